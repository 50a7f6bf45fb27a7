"""neonize offline: hand-built protobuf events through neonize's own dispatch path, into
our adapter, supervisor, ingest and outbox; sends asserted at the neonize client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message as ProtoMessage
from neonize.aioze import events as neonize_events
from neonize.exc import NeonizeError
from neonize.proto import Neonize_pb2 as pb
from sqlalchemy import select

from bot.api import create_app
from bot.channels.neonize_adapter import NeonizeSession
from bot.channels.session_wire import decode_event, dumps, encode_event
from bot.channels.wa_events import ConnectionEvent, ConnState, IncomingMessage, IncomingReceipt
from bot.channels.wa_store import explain_connect_error, explain_store_error, store_url
from bot.infra.redis_adapter import Lease
from bot.messages import MessageKind
from bot.settings import Settings
from bot.settings.channels import ChannelsConfig, NeonizeConfig, PacingConfig
from bot.wiring.runtime import Runtime
from handoff.conversations import Contact, Conversation, Message
from tests.channels.neonize_fakes import (
    BUSINESS,
    CUSTOMER_JID,
    DIAL_ERROR,
    Sessions,
    client_of,
    feed,
    feed_qr,
    image,
    jid,
    linked,
    login,
    message_event,
    number_state,
    offline_session,
    receipt,
    settle,
    text,
    until,
    voice,
)
from tests.voice.conftest import png

OTHER = "+525522220000"


@pytest.fixture(autouse=True)
async def neonize_loop() -> None:
    # neonize dispatches handlers onto one module-wide loop, set once (at connect).
    neonize_events.set_event_loop(asyncio.get_running_loop())


def _no_protobuf(value: Any) -> None:
    assert not isinstance(value, ProtoMessage)
    for name in getattr(value, "__slots__", ()):
        assert not isinstance(getattr(value, name), ProtoMessage), name


async def drain(session: NeonizeSession) -> list[Any]:
    await settle()
    out = []
    while not session.events.empty():
        out.append(session.events.get_nowait())
    return out


async def test_events_are_mapped_through_neonize_dispatch() -> None:
    session = offline_session()
    client = client_of(session)
    feed(client, message_event("3EB0TXT", text("hola, ¿cuánto sale el seguro? 🚗")))
    feed(client, message_event("3EB0PTT", voice(), media_type="ptt"))
    feed(client, message_event("3EB0IMG", image("mi tarjeta de circulación")))
    feed(client, message_event("3EB0OWN", text("yo le atiendo"), from_me=True))
    feed(client, receipt(["3EB0OUT1", "3EB0OUT2"], "READ"))
    feed(client, receipt(["3EB0OUT1"], "SENDER"))  # our own devices: ignored
    feed(client, pb.LoggedOut(OnConnect=False,
                              Reason=pb.ConnectFailureReason.Value("LOGGED_OUT")))
    feed(client, pb.StreamReplaced())
    ban_reason = pb.TemporaryBan.TempBanReason.Value("SEND_TO_TOO_MANY_PEOPLE")
    feed(client, pb.TemporaryBan(Code=ban_reason, Expire=3600))
    events = await drain(session)
    for event in events:
        _no_protobuf(event)
    txt, ptt, img, own, rcpt, logged_out, replaced, ban = events
    assert isinstance(txt, IncomingMessage) and txt.kind is MessageKind.TEXT
    assert txt.text == "hola, ¿cuánto sale el seguro? 🚗" and txt.peer.phone == "+525512345678"
    assert txt.sender_name == "Lupita" and not txt.from_owner and txt.download is None
    assert isinstance(ptt, IncomingMessage) and ptt.kind is MessageKind.VOICE
    assert ptt.mime_type == "audio/ogg; codecs=opus" and ptt.download is not None
    assert await ptt.download() == b"OggS fake voice note"
    assert client.calls[-1][0] == "download_any"
    assert isinstance(img, IncomingMessage) and img.kind is MessageKind.IMAGE
    assert img.text == "mi tarjeta de circulación"
    assert isinstance(own, IncomingMessage) and own.from_owner
    assert own.peer.phone == "+525512345678" and own.sender_name is None
    assert isinstance(rcpt, IncomingReceipt) and rcpt.message_ids == ("3EB0OUT1", "3EB0OUT2")
    assert rcpt.status.value == "read"
    assert isinstance(logged_out, ConnectionEvent) and logged_out.state is ConnState.LOGGED_OUT
    assert isinstance(replaced, ConnectionEvent)
    assert replaced.state is ConnState.STREAM_REPLACED
    assert isinstance(ban, ConnectionEvent) and ban.state is ConnState.TEMP_BANNED
    assert ban.retry_after == 3600 and "too many people" in (ban.detail or "")


async def test_lid_sender_and_group_messages() -> None:
    session = offline_session()
    client = client_of(session)
    lid_chat = jid("987654321012345", "lid")
    feed(client, message_event("3EB0LID1", text("hola"), chat=lid_chat))
    feed(client, message_event("3EB0LID2", text("hola"), chat=lid_chat,
                               sender_alt=jid(CUSTOMER_JID)))
    group = pb.Message(Info=pb.MessageInfo(
        MessageSource=pb.MessageSource(Chat=jid("1203630", "g.us"), Sender=jid(CUSTOMER_JID),
                                       IsGroup=True), ID="3EB0GRP"), Message=text("hola grupo"))
    feed(client, group)
    only_lid, both = await drain(session)
    assert only_lid.peer.lid == "987654321012345" and only_lid.peer.phone is None
    assert both.peer.lid == "987654321012345" and both.peer.phone == "+525512345678"


async def test_store_url_for_whatsmeow() -> None:
    assert store_url("postgresql://postgres@/atiende?host=/tmp/pg") == (
        "postgres://postgres@/atiende?host=/tmp/pg&sslmode=disable")
    assert store_url("postgresql+psycopg://u:p@db:5432/x?sslmode=require") == (
        "postgres://u:p@db:5432/x?sslmode=require")


@pytest.mark.parametrize(("raw", "said"), [
    # lib/pq through whatsmeow (measured with neonize 0.5.2) and libpq through psycopg
    ('error: failed to upgrade database: failed to check if version table is up to date: pq: '
     'database "nodb" does not exist (3D000)', 'the store database "nodb" does not exist'),
    ("error: failed to upgrade database: failed to check if version table is up to date: dial "
     "unix /tmp/nope/.s.PGSQL.5432: connect: no such file or directory",
     "nothing listens at /tmp/nope/.s.PGSQL.5432"),
    ('connection failed: connection to server on socket "/x/.s.PGSQL.5432" failed: FATAL:  '
     'password authentication failed for user "wa_store"',
     'wrong password for the store user "wa_store"'),
    ("error: failed to upgrade database: unsupported database schema version: currently on v99 "
     "(compatible down to v99), latest known: v15",
     "newer whatsmeow (schema v99; this Atiende knows up to v15)"),
    ('pq: too many connections for role "t_whatsmeow"',
     'the store user "t_whatsmeow" has used all the connections'),
    ("dial tcp 10.0.0.5:5432: connect: connection refused",
     "cannot reach the store's PostgreSQL at 10.0.0.5:5432: is the server running"),
    ("permission denied to create role", "needs CREATEROLE"),
    ('error: failed to upgrade database: pq: relation "whatsmeow_version" does not exist at '
     "column 29 (42P01)", "a user that can see only that one"),
])
def test_store_errors_in_plain_words(raw: str, said: str) -> None:
    explained = explain_store_error(raw)
    assert said in explained and raw.removeprefix("error: ")[:80] in explained


def test_connect_errors_in_plain_words() -> None:
    assert explain_connect_error(DIAL_ERROR).startswith("cannot reach WhatsApp's servers")
    assert "does not exist" in explain_connect_error('pq: database "x" does not exist')


async def test_events_cross_the_pipe_unchanged() -> None:
    """What a number's client process sends the worker: the same typed events; media is
    fetched back through the process on demand."""
    session = offline_session()
    feed(session.client, message_event("3EB0PTT", voice(), media_type="ptt"))
    feed(session.client, message_event("3EB0TXT", text("¿tienen seguro para moto? 🏍️")))
    feed(session.client, receipt(["3EB0OUT1"], "READ"))
    feed(session.client, pb.TemporaryBan(
        Code=pb.TemporaryBan.TempBanReason.Value("SEND_TO_TOO_MANY_PEOPLE"), Expire=60))
    fetched: list[str] = []

    def download_for(message_id: str) -> Callable[[], Awaitable[bytes]]:
        async def download() -> bytes:
            fetched.append(message_id)
            return b"OggS"

        return download

    for event in await drain(session):
        line = dumps({"event": encode_event(event)})
        back = decode_event(json.loads(line)["event"], download_for)
        assert back == event  # the download callable is not compared
        if isinstance(event, IncomingMessage):
            assert (back.download is None) == (event.download is None)  # type: ignore[union-attr]
            if back.download is not None:  # type: ignore[union-attr]
                assert await back.download() == b"OggS"  # type: ignore[union-attr]
    assert fetched == ["3EB0PTT"]


async def test_resume_uses_the_stored_device_jid() -> None:
    session = offline_session(jid_text="5215511110000:7@s.whatsapp.net")
    args, kwargs = client_of(session).init_args
    assert kwargs["jid"].User == "5215511110000" and kwargs["jid"].Device == 7
    fresh = offline_session()
    args, kwargs = client_of(fresh).init_args
    assert kwargs == {"uuid": f"atiende-{BUSINESS}", "new_device": True}


# --- the whole path: supervisor, ingest, pipeline, paced outbox, receipts ------------------


@pytest.fixture
def sessions() -> Sessions:
    return Sessions()


@pytest.fixture
async def wa_runtime(
    tmp_path: Path, database_url: str, redis_url: str, sessions: Sessions
) -> AsyncIterator[Runtime]:
    settings = Settings(
        env="test", data_dir=tmp_path, stalled_job_seconds=2, reconcile_interval_seconds=0.5,
        job_retry_base_seconds=1, worker_concurrency=4, log_level="WARNING",
        channels=ChannelsConfig(
            pacing=PacingConfig(messages_per_minute=600, burst=10, jitter_seconds=0,
                                typing_min_seconds=0.05, typing_max_seconds=0.05),
            neonize=NeonizeConfig(poll_seconds=0.1, lease_seconds=2, restart_cap=2,
                                  backoff_initial_seconds=0.05, backoff_max_seconds=0.3,
                                  qr_timeout_seconds=1.0),
        ),
    )
    rt = await Runtime.create(settings, database_url=database_url, redis_url=redis_url,
                              whatsapp_sessions=sessions)
    rt.start_worker()
    yield rt
    await rt.close()


async def _rows(rt: Runtime, **where: Any) -> list[Message]:
    async with rt.sessions() as s:
        q = select(Message).order_by(Message.seq)
        for k, v in where.items():
            q = q.where(getattr(Message, k) == v)
        return list((await s.execute(q)).scalars())


async def test_link_receive_reply_and_receipts(wa_runtime: Runtime, sessions: Sessions) -> None:
    session = await linked(wa_runtime, sessions)
    record = await number_state(wa_runtime)
    assert record.jid == f"{BUSINESS.lstrip('+')}:4@s.whatsapp.net" and record.qr is None
    client = client_of(session)
    feed(client, message_event("3EB0HOLA", text("hola buenas")))

    async def replied() -> bool:
        return any(c[0] == "send_message" for c in client.calls)

    await until(replied)
    names = [c[0] for c in client.calls]
    first_send = names.index("send_message")
    # read mark and "typing…" come before the reply, "paused" after it
    assert names[:first_send][-2:] == ["mark_read", "send_chat_presence"]
    assert client.calls[names.index("mark_read")][1] == ("3EB0HOLA",)
    to, body = client.calls[first_send][1]
    assert to.User == "525512345678" and isinstance(body, str) and body
    assert names[first_send + 1] == "send_chat_presence"

    async def sent() -> bool:
        return [r.status for r in await _rows(wa_runtime, direction="out")] == ["sent"]

    await until(sent)
    out = (await _rows(wa_runtime, direction="out"))[0]
    assert out.provider_message_id == "3EB0OUT1" and out.channel == "whatsapp"
    feed(client, receipt(["3EB0OUT1"], "DELIVERED"))
    feed(client, receipt(["3EB0OUT1"], "READ"))

    async def read() -> bool:
        return (await _rows(wa_runtime, direction="out"))[0].status == "read"

    await until(read)
    # the same message delivered twice (whatsmeow retry) is stored once
    feed(client, message_event("3EB0HOLA", text("hola buenas")))
    await asyncio.sleep(0.3)
    assert len(await _rows(wa_runtime, direction="in")) == 1
    metrics = wa_runtime.metrics.render().decode()
    assert f'atiende_whatsapp_number_up{{account="{BUSINESS}",state="connected"}} 1.0' in metrics


async def test_owner_typed_moves_to_human_and_voice_is_kept(
    wa_runtime: Runtime, sessions: Sessions
) -> None:
    session = await linked(wa_runtime, sessions)
    client = client_of(session)
    client.media = NeonizeError("media expired")
    feed(client, message_event("3EB0OWN", text("Buenas, soy Carlos, yo le atiendo"),
                               from_me=True))

    async def human() -> bool:
        async with wa_runtime.sessions() as s:
            owner = (await s.execute(select(Conversation.owner))).scalar_one_or_none()
        return owner == "human"

    await until(human)
    own = (await _rows(wa_runtime, provider_message_id="3EB0OWN"))[0]
    assert own.author == "owner_phone" and own.direction == "out"
    feed(client, message_event("3EB0VOZ", voice(), media_type="ptt"))

    async def stored() -> bool:
        return bool(await _rows(wa_runtime, provider_message_id="3EB0VOZ"))

    await until(stored)
    row = (await _rows(wa_runtime, provider_message_id="3EB0VOZ"))[0]
    assert row.kind == "voice" and row.media and row.media["mime_type"].startswith("audio/ogg")
    assert row.raw and "media_error" in row.raw  # kept, with the reason, not dropped
    await asyncio.sleep(0.5)
    assert not [c for c in client.calls if c[0] == "send_message"]  # the bot stays silent


async def test_image_downloaded_into_the_media_store(
    wa_runtime: Runtime, sessions: Sessions
) -> None:
    session = await linked(wa_runtime, sessions)
    picture = png(32, 32)
    client_of(session).media = picture
    feed(session.client, message_event("3EB0FOTO", image("la placa del coche", "image/png")))

    async def stored() -> bool:
        return bool(await _rows(wa_runtime, provider_message_id="3EB0FOTO"))

    await until(stored)
    row = (await _rows(wa_runtime, provider_message_id="3EB0FOTO"))[0]
    assert row.kind == "image" and row.text == "la placa del coche"
    assert row.media and row.media["key"] and row.media["provider_media_id"] == "3EB0FOTO"
    assert b"".join([c async for c in wa_runtime.media.read(row.media["key"])]) == picture


async def test_lid_sender_mapped_to_known_contact(
    wa_runtime: Runtime, sessions: Sessions
) -> None:
    session = await linked(wa_runtime, sessions)
    async with wa_runtime.sessions() as s, s.begin():
        s.add(Contact(id=uuid.uuid4(), phone_e164="+525512345678", wa_lid="987654321012345",
                      name="Lupita"))
    feed(session.client, message_event("3EB0LID", text("sigo esperando"),
                                       chat=jid("987654321012345", "lid")))

    async def stored() -> bool:
        return bool(await _rows(wa_runtime, provider_message_id="3EB0LID"))

    await until(stored)
    async with wa_runtime.sessions() as s:
        phone = (await s.execute(
            select(Contact.phone_e164).join(Conversation, Conversation.contact_id == Contact.id)
        )).scalar_one()
    assert phone == "+525512345678"


async def test_logged_out_needs_a_new_link(wa_runtime: Runtime, sessions: Sessions) -> None:
    session = await linked(wa_runtime, sessions)
    alerts = wa_runtime.events.subscribe("admin:alerts")
    async with alerts as queue:
        feed(session.client, pb.LoggedOut(OnConnect=False,
                                          Reason=pb.ConnectFailureReason.Value("LOGGED_OUT")))

        async def logged_out() -> bool:
            return (await number_state(wa_runtime)).state == "logged_out"

        await until(logged_out)
        alert = await asyncio.wait_for(queue.get(), 5)
    assert alert["state"] == "logged_out" and alert["account"] == BUSINESS
    record = await number_state(wa_runtime)
    assert record.jid is None
    assert ("stop", (), {}) in client_of(session).calls
    await asyncio.sleep(0.5)
    assert len(sessions.made) == 1  # not restarted by itself
    await wa_runtime.whatsapp.book.request_link(BUSINESS, pairing_phone=None)

    async def relinking() -> bool:
        return len(sessions.made) == 2

    await until(relinking)
    args, kwargs = client_of(sessions.latest()).init_args
    assert kwargs.get("new_device") is True  # a fresh QR, not a resume


async def test_stream_replaced_is_not_fought(wa_runtime: Runtime, sessions: Sessions) -> None:
    session = await linked(wa_runtime, sessions)
    feed(session.client, pb.StreamReplaced())

    async def replaced() -> bool:
        return (await number_state(wa_runtime)).state == "stream_replaced"

    await until(replaced)
    assert ("stop", (), {}) in client_of(session).calls
    assert len(sessions.made) == 1  # waits the longest backoff before trying again

    async def retried() -> bool:
        return len(sessions.made) == 2

    await until(retried)
    args, kwargs = client_of(sessions.latest()).init_args
    assert kwargs["jid"].Device == 4  # resumes the stored device, no new QR


async def test_temporary_ban_leaves_other_numbers_working(
    wa_runtime: Runtime, sessions: Sessions
) -> None:
    banned = await linked(wa_runtime, sessions, BUSINESS)
    other = await linked(wa_runtime, sessions, OTHER)
    feed(banned.client, pb.TemporaryBan(
        Code=pb.TemporaryBan.TempBanReason.Value("SEND_TO_TOO_MANY_PEOPLE"), Expire=3600))

    async def banned_state() -> bool:
        return (await number_state(wa_runtime, BUSINESS)).state == "temp_banned"

    await until(banned_state)
    record = await number_state(wa_runtime, BUSINESS)
    assert record.retry_at is not None and "too many people" in (record.detail or "")
    feed(other.client, message_event("3EB0OTRO", text("hola"), pushname="Beto"))

    async def answered() -> bool:
        return any(c[0] == "send_message" for c in client_of(other).calls)

    await until(answered)
    assert (await number_state(wa_runtime, OTHER)).state == "connected"


async def test_restart_cap_marks_failed(wa_runtime: Runtime, sessions: Sessions) -> None:
    sessions.fail_connect.add(BUSINESS)
    await wa_runtime.whatsapp.book.add(BUSINESS, None)
    await wa_runtime.whatsapp.book.request_link(BUSINESS, pairing_phone=None)

    async def failed() -> bool:
        return (await number_state(wa_runtime)).state == "failed"

    await until(failed)
    record = await number_state(wa_runtime)
    assert "gave up after 2 restarts" in (record.detail or "")
    assert "cannot reach WhatsApp's servers" in (record.detail or "")
    assert "no such host" in (record.detail or "")
    assert len(sessions.made) == 3  # first try + 2 restarts
    assert record.restarts == 2


async def test_qr_scanned_by_another_numbers_phone_needs_linking(
    wa_runtime: Runtime, sessions: Sessions
) -> None:
    await wa_runtime.whatsapp.book.add(BUSINESS, None)
    await wa_runtime.whatsapp.book.request_link(BUSINESS, pairing_phone=None)

    async def started() -> bool:
        return bool(sessions.made)

    await until(started)
    session = sessions.latest()
    feed_qr(session.client, "2@scan-me")
    wrong_phone = pb.JID(User="5215599990000", Server="s.whatsapp.net", Device=7, RawAgent=0,
                         Integrator=0, IsEmpty=False)
    feed(session.client, pb.PairStatus(ID=wrong_phone, BusinessName="Otro", Platform="ios"))

    async def needs_link() -> bool:
        return (await number_state(wa_runtime)).state == "needs_link"

    await until(needs_link)
    record = await number_state(wa_runtime)
    assert record.jid is None  # never stored: resuming it would run another number's phone
    assert "scanned by +525599990000, not by this number" in (record.detail or "")
    assert ("stop", (), {}) in client_of(session).calls
    await asyncio.sleep(0.3)
    assert len(sessions.made) == 1  # waits for the admin to link again


async def test_qr_nobody_scans_times_out_and_can_retry(
    wa_runtime: Runtime, sessions: Sessions
) -> None:
    await wa_runtime.whatsapp.book.add(BUSINESS, None)
    await wa_runtime.whatsapp.book.request_link(BUSINESS, pairing_phone="+52 55 1111 0000")

    async def started() -> bool:
        return bool(sessions.made)

    await until(started)
    feed_qr(sessions.latest().client, "2@first")

    async def code() -> bool:
        return (await number_state(wa_runtime)).pairing_code == "ABCD-EFGH"

    await until(code)
    assert ("PairPhone", ("525511110000",), {}) in client_of(sessions.latest()).calls

    async def stopped() -> bool:
        return (await number_state(wa_runtime)).state == "stopped"

    await until(stopped)
    record = await number_state(wa_runtime)
    assert not record.enabled and record.qr is None and "not scanned" in (record.detail or "")
    await wa_runtime.whatsapp.book.request_link(BUSINESS, pairing_phone=None)

    async def again() -> bool:
        return len(sessions.made) == 2

    await until(again)


async def test_one_node_owns_a_number(redis_url: str, wa_runtime: Runtime) -> None:
    # margins wide enough for a loaded 2-core machine's event-loop lag
    ttl = timedelta(seconds=2)
    node_a = Lease(wa_runtime.redis, "whatsapp:+5255", holder="node-a", ttl=ttl)
    node_b = Lease(wa_runtime.redis, "whatsapp:+5255", holder="node-b", ttl=ttl)
    assert await node_a.acquire()
    assert not await node_b.acquire()
    assert await node_a.renew() and not await node_b.renew()
    await asyncio.sleep(1.0)
    assert await node_a.renew()  # renewal keeps it
    await asyncio.sleep(1.0)
    assert not await node_b.acquire()  # past the first TTL, but renewed
    await asyncio.sleep(2.3)  # node A died: no renewal
    assert await node_b.acquire()
    assert await node_b.current_holder() == "node-b"
    assert not await node_a.renew()
    await node_a.release()  # not the holder: changes nothing
    assert await node_b.current_holder() == "node-b"


@pytest.fixture
async def wa_client(wa_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async def factory() -> Runtime:
        return wa_runtime

    api = create_app(factory, run_worker=False)
    api.state.runtime = wa_runtime
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api),
                                 base_url="http://atiende.test") as c:
        yield c


async def test_admin_links_a_number_from_the_page(
    wa_runtime: Runtime, wa_client: httpx.AsyncClient, sessions: Sessions
) -> None:
    api = "/api/v1/whatsapp/numbers"
    assert (await wa_client.get(api)).status_code == 401
    agent = await login(wa_runtime, wa_client, "agent")
    assert (await wa_client.get(api, headers=agent)).status_code == 403
    assert (await wa_client.post(api, json={"account": "+52 55 1111 0000"},
                                 headers=agent)).status_code == 403
    admin = await login(wa_runtime, wa_client, "admin")
    created = await wa_client.post(api, json={"account": "55 1111 0000", "label": "Ventas"},
                                   headers=admin)
    assert created.status_code == 201 and created.json()["account"] == BUSINESS
    bad = await wa_client.post(api, json={"account": "hola que tal"}, headers=admin)
    assert bad.status_code == 422
    path = f"{api}/%2B525511110000"
    assert (await wa_client.get(f"{path}/qr.svg", headers=admin)).status_code == 404
    linked = await wa_client.post(f"{path}/link", json={"mode": "qr"}, headers=admin)
    assert linked.status_code == 202 and linked.json()["state"] == "connecting"

    async def started() -> bool:
        return bool(sessions.made)

    await until(started)
    feed_qr(sessions.latest().client, "2@qr-for-the-page")

    async def has_qr() -> bool:
        listed = (await wa_client.get(api, headers=admin)).json()
        return bool(listed[0]["has_qr"])

    await until(has_qr)
    svg = await wa_client.get(f"{path}/qr.svg", headers=admin)
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.content.startswith(b"<?xml") and b"<svg" in svg.content
    page = await wa_client.get("/admin/whatsapp", headers=admin)
    assert page.status_code == 200 and "Vincular con QR" in page.text
    assert "Link with QR" not in page.text  # one language at a time (the page's catalog)
    assert (await wa_client.get("/admin/whatsapp", headers=agent)).status_code == 403
    anonymous = await wa_client.get("/admin/whatsapp", follow_redirects=False)
    assert anonymous.status_code in (302, 303, 307) and "/login" in anonymous.headers["location"]
    disabled = await wa_client.post(f"{path}/disable", headers=admin)
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    missing = await wa_client.post(f"{api}/%2B525599990000/link", json={}, headers=admin)
    assert missing.status_code == 404


async def test_agent_sends_an_image_through_the_number(
    wa_runtime: Runtime, sessions: Sessions
) -> None:
    from tests.voice.conftest import chunks_of

    session = await linked(wa_runtime, sessions)
    client = client_of(session)
    feed(client, message_event("3EB0Q", text("me mandas la póliza?")))

    async def answered() -> bool:
        return [r.status for r in await _rows(wa_runtime, direction="out")] == ["sent"]

    await until(answered)
    picture = png(20, 20)
    ref = await wa_runtime.media.save(chunks_of(picture), kind=MessageKind.IMAGE,
                                      mime_type="image/png", filename="poliza.png")
    conversation_id = (await _rows(wa_runtime, direction="in"))[0].conversation_id
    async with wa_runtime.sessions() as s, s.begin():
        s.add(Message(id=uuid.uuid4(), conversation_id=conversation_id, direction="out",
                      author="agent", kind="image", channel="whatsapp", status="pending",
                      text="Aquí está su póliza", media={
                          "mime_type": ref.mime_type, "key": ref.key, "size": ref.size,
                          "filename": "poliza.png"}))
    await wa_runtime.outbox.send_pending(conversation_id)

    async def image_sent() -> bool:
        return any(c[0] == "send_image" for c in client.calls)

    await until(image_sent)
    name, (to, data, caption), _ = next(c for c in client.calls if c[0] == "send_image")
    assert to.User == "525512345678" and data == picture and caption == "Aquí está su póliza"


async def test_second_node_waits_then_takes_over(
    wa_runtime: Runtime, sessions: Sessions
) -> None:
    from bot.channels.supervisor import Backoff, NumberSupervisor, SupervisorPolicy
    from bot.channels.whatsapp import LidDirectory, LiveSessions, WhatsAppInbound

    await linked(wa_runtime, sessions)  # node A (the runtime's pool) owns the number
    lease = Lease(wa_runtime.redis, f"whatsapp:{BUSINESS}", holder="node-b",
                  ttl=timedelta(seconds=2))
    live_b = LiveSessions()
    node_b = NumberSupervisor(
        BUSINESS, book=wa_runtime.whatsapp.book, lease=lease, live=live_b,
        inbound=WhatsAppInbound(ingestor=wa_runtime.ingestor, receipts=wa_runtime.receipts,
                                lids=LidDirectory(wa_runtime.sessions), media=None),
        factory=sessions, policy=SupervisorPolicy(Backoff(0.05, 0.3), 2, 5.0, 2.0),
        metrics=wa_runtime.metrics, events=wa_runtime.events, clock=wa_runtime.clock,
    )
    assert await node_b.run() is ConnState.STANDBY
    made = len(sessions.made)
    await wa_runtime.stop_worker()  # node A goes away (its lease is released or expires)
    task = asyncio.create_task(node_b.run())

    async def b_started() -> bool:
        return len(sessions.made) > made

    await until(b_started)
    feed(sessions.latest().client, pb.Connected(status=True))

    async def b_connected() -> bool:
        record = await number_state(wa_runtime)
        return record.state == "connected" and record.owner_node == "node-b"

    await until(b_connected)
    assert live_b.accounts() == [BUSINESS]
    args, kwargs = client_of(sessions.latest()).init_args
    assert kwargs["jid"].Device == 4  # resumed from the stored session, no QR
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await lease.current_holder() is None  # released on the way out
