"""Cloud API sending: statuses, the 24-hour window, retries against a fake Graph API."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from bot.channels.cloud_api import CLOUD_CHANNEL, GraphApi
from bot.errors import ChannelError, ChannelRateLimited, ChannelRefused, OutsideServiceWindow
from bot.wiring.runtime import Runtime
from handoff.conversations import Conversation, Message
from tests.channels.conftest import PHONE_NUMBER_ID, envelope, post_signed, text_message
from tests.channels.fake_graph import FakeGraph
from tests.channels.test_cloud_webhook import count_messages, until


async def _conversation_with_reply(
    client: httpx.AsyncClient, rt: Runtime, wamid: str = "wamid.in1"
) -> Message:
    await post_signed(client, envelope(messages=[text_message("hola", wamid)]))

    async def sent() -> bool:
        return await count_messages(rt, direction="out", status="sent") >= 1

    await until(sent)
    async with rt.sessions() as s:
        return (await s.execute(select(Message).where(Message.direction == "out"))).scalar_one()


async def _status_of(rt: Runtime, message_id: uuid.UUID) -> tuple[str, str | None]:
    async with rt.sessions() as s:
        row = (await s.execute(select(Message).where(Message.id == message_id))).scalar_one()
    return row.status, row.error


def _status(wamid: str, status: str, **extra: object) -> dict[str, object]:
    return {"id": wamid, "status": status, "timestamp": "1749416400",
            "recipient_id": "5215512345678",
            "conversation": {"id": "c1", "origin": {"type": "service"}},
            "pricing": {"billable": False, "pricing_model": "PMP", "category": "service"},
            **extra}


async def test_statuses_move_forward_only(
    cloud_client: httpx.AsyncClient, cloud_runtime: Runtime
) -> None:
    out = await _conversation_with_reply(cloud_client, cloud_runtime)
    wamid = out.provider_message_id
    assert wamid
    r = await post_signed(cloud_client, envelope(statuses=[_status(wamid, "delivered")]))
    assert r.status_code == 200 and r.json()["statuses"] == 1
    assert (await _status_of(cloud_runtime, out.id))[0] == "delivered"
    await post_signed(cloud_client, envelope(statuses=[_status(wamid, "read")]))
    assert (await _status_of(cloud_runtime, out.id))[0] == "read"
    # late, out-of-order "delivered" and "sent" do not undo "read"
    r = await post_signed(
        cloud_client, envelope(statuses=[_status(wamid, "delivered"), _status(wamid, "sent")]))
    assert r.status_code == 200 and r.json()["statuses"] == 0
    assert (await _status_of(cloud_runtime, out.id))[0] == "read"
    # statuses for ids we never sent are acknowledged and change nothing
    r = await post_signed(cloud_client, envelope(statuses=[_status("wamid.unknown", "read")]))
    assert r.status_code == 200 and r.json()["statuses"] == 0


async def test_failed_status_records_error_code(
    cloud_client: httpx.AsyncClient, cloud_runtime: Runtime
) -> None:
    out = await _conversation_with_reply(cloud_client, cloud_runtime)
    failed = _status(out.provider_message_id or "", "failed", errors=[{
        "code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
        "error_data": {"details": "Message failed to send because more than 24 hours have "
                                  "passed since the customer last replied to this number."}}])
    r = await post_signed(cloud_client, envelope(statuses=[failed]))
    assert r.status_code == 200
    status, error = await _status_of(cloud_runtime, out.id)
    assert status == "failed" and error and "131047" in error and "24 hours" in error


async def _pending_reply(rt: Runtime, conversation_id: uuid.UUID, **values: object) -> uuid.UUID:
    mid = uuid.uuid4()
    async with rt.sessions() as s, s.begin():
        s.add(Message(id=mid, conversation_id=conversation_id, direction="out", author="agent",
                      kind="text", channel=CLOUD_CHANNEL, status="pending", **values))
    return mid


async def test_window_closed_refuses_free_text_allows_template(
    cloud_client: httpx.AsyncClient, cloud_runtime: Runtime, fake_graph: FakeGraph
) -> None:
    out = await _conversation_with_reply(cloud_client, cloud_runtime)
    async with cloud_runtime.sessions() as s, s.begin():
        await s.execute(
            update(Message).where(Message.direction == "in")
            .values(created_at=Message.created_at - timedelta(hours=25)))
    sends_before = len(fake_graph.sends())
    text_id = await _pending_reply(cloud_runtime, out.conversation_id, text="¿Sigue interesado?")
    template_id = await _pending_reply(
        cloud_runtime, out.conversation_id, text=None,
        raw={"template": {"name": "seguimiento_cotizacion", "language": "es_MX",
                          "components": [{"type": "body", "parameters": [
                              {"type": "text", "text": "Lupita"}]}]}})
    await cloud_runtime.outbox.send_pending(out.conversation_id)
    status, error = await _status_of(cloud_runtime, text_id)
    assert status == "failed" and error and "24 hours" in error
    assert (await _status_of(cloud_runtime, template_id))[0] == "sent"
    sends = fake_graph.sends()[sends_before:]
    assert len(sends) == 1 and sends[0].body["type"] == "template"
    assert sends[0].body["template"]["name"] == "seguimiento_cotizacion"
    assert sends[0].body["template"]["language"] == {"code": "es_MX"}
    # the customer writes again: the window reopens and free text goes out
    await post_signed(cloud_client, envelope(messages=[text_message("sí, gracias", "wamid.in2")]))
    later = await _pending_reply(cloud_runtime, out.conversation_id, text="¡Con gusto!")
    await cloud_runtime.outbox.send_pending(out.conversation_id)
    assert (await _status_of(cloud_runtime, later))[0] in {"sent", "delivered"}


@pytest.fixture
async def graph(fake_graph: FakeGraph) -> AsyncIterator[GraphApi]:
    async with httpx.AsyncClient() as http:
        yield GraphApi(base_url=fake_graph.url, access_token="t", http=http,
                       attempts=3, base_wait_seconds=0.01, max_wait_seconds=2)


MSG = {"messaging_product": "whatsapp", "to": "525512345678", "type": "text",
       "text": {"body": "hola"}}


async def test_retry_after_is_honoured_then_sent(graph: GraphApi, fake_graph: FakeGraph) -> None:
    fake_graph.script.append((429, {"Retry-After": "1"}, {"error": {"code": 130429,
                              "message": "Rate limit hit"}}))
    fake_graph.script.append((503, {}, {"error": {"code": 2, "message": "Service unavailable"}}))
    started = time.monotonic()
    wamid = await graph.send(PHONE_NUMBER_ID, MSG)
    assert wamid.startswith("wamid.") and len(fake_graph.sends()) == 3
    assert time.monotonic() - started >= 1.0  # waited what Retry-After said


async def test_long_retry_after_is_handed_back(graph: GraphApi, fake_graph: FakeGraph) -> None:
    fake_graph.script.append((429, {"Retry-After": "120"}, {}))
    with pytest.raises(ChannelRateLimited) as info:
        await graph.send(PHONE_NUMBER_ID, MSG)
    assert info.value.retry_after == 120 and len(fake_graph.sends()) == 1


async def test_errors_are_translated(graph: GraphApi, fake_graph: FakeGraph) -> None:
    for _ in range(3):
        fake_graph.script.append((500, {}, {"error": {"code": 1, "message": "boom"}}))
    with pytest.raises(ChannelError) as info:
        await graph.send(PHONE_NUMBER_ID, MSG)
    assert not isinstance(info.value, ChannelRefused) and len(fake_graph.sends()) == 3
    fake_graph.script.append((400, {}, {"error": {"code": 131047, "message": "Re-engagement"}}))
    with pytest.raises(OutsideServiceWindow):
        await graph.send(PHONE_NUMBER_ID, MSG)
    fake_graph.script.append((400, {}, {"error": {"code": 131026, "message": "undeliverable"}}))
    fake_graph.script.append((401, {}, {"error": {"code": 190, "message": "token expired"}}))
    with pytest.raises(ChannelRefused):
        await graph.send(PHONE_NUMBER_ID, MSG)
    with pytest.raises(ChannelRefused) as refused:
        await graph.send(PHONE_NUMBER_ID, MSG)
    assert refused.value.code == 190
    async with httpx.AsyncClient() as http:
        unreachable = GraphApi(base_url="http://127.0.0.1:9/v21.0", access_token="t",
                               http=http, attempts=2, base_wait_seconds=0.01)
        with pytest.raises(ChannelError):
            await unreachable.send(PHONE_NUMBER_ID, MSG)


async def test_conversation_account_is_the_sending_number(
    cloud_client: httpx.AsyncClient, cloud_runtime: Runtime, fake_graph: FakeGraph
) -> None:
    out = await _conversation_with_reply(cloud_client, cloud_runtime)
    async with cloud_runtime.sessions() as s:
        conv = (await s.execute(select(Conversation))).scalar_one()
    assert conv.id == out.conversation_id and conv.account == PHONE_NUMBER_ID
    assert fake_graph.sends()[0].path.endswith(f"/{PHONE_NUMBER_ID}/messages")
