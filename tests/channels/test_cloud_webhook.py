"""The Cloud API webhook with Meta's sample payloads, signed and forged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy import func, select

from bot.wiring.runtime import Runtime
from handoff.conversations import Contact, Conversation, Message
from tests.channels.conftest import (
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    envelope,
    post_signed,
    sign,
    text_message,
)
from tests.channels.fake_graph import FakeGraph
from tests.voice.conftest import png

URL = "/webhooks/whatsapp-cloud"


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def count_messages(rt: Runtime, **where: object) -> int:
    async with rt.sessions() as s:
        q = select(func.count()).select_from(Message)
        for k, v in where.items():
            q = q.where(getattr(Message, k) == v)
        return int((await s.execute(q)).scalar_one())


async def test_verify_challenge(cloud_client: httpx.AsyncClient) -> None:
    ok = await cloud_client.get(URL, params={
        "hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    bad = await cloud_client.get(URL, params={
        "hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1158201444"})
    assert bad.status_code == 403
    missing = await cloud_client.get(URL, params={"hub.mode": "subscribe"})
    assert missing.status_code == 403


async def test_text_is_stored_answered_through_graph(
    cloud_client: httpx.AsyncClient, cloud_runtime: Runtime, fake_graph: FakeGraph
) -> None:
    payload = envelope(messages=[text_message("hola buenas tardes 👋", "wamid.HBgLMTU1")])
    response = await post_signed(cloud_client, payload)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 1
    async with cloud_runtime.sessions() as s:
        row = (await s.execute(select(Message).where(Message.direction == "in"))).scalar_one()
        contact = (await s.execute(select(Contact))).scalar_one()
        conv = (await s.execute(select(Conversation))).scalar_one()
    assert row.text == "hola buenas tardes 👋" and row.channel == "whatsapp_cloud"
    assert contact.phone_e164 == "+525512345678" and contact.name == "Lupita Hernández"
    assert conv.account == PHONE_NUMBER_ID

    async def replied() -> bool:
        return await count_messages(cloud_runtime, direction="out", status="sent") >= 1

    await until(replied)
    send = fake_graph.sends()[0]
    assert send.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert send.headers["Authorization"] == "Bearer EAAG-test-token"
    assert send.body["to"] == "525512345678" and send.body["type"] == "text"
    assert send.body["messaging_product"] == "whatsapp" and send.body["text"]["body"]
    async with cloud_runtime.sessions() as s:
        out = (await s.execute(select(Message).where(Message.direction == "out"))).scalar_one()
    assert out.provider_message_id == "wamid.fake1"


async def test_forged_or_missing_signature_stores_nothing(
    cloud_client: httpx.AsyncClient, cloud_runtime: Runtime
) -> None:
    body = json.dumps(envelope(messages=[text_message("hola", "wamid.forged")])).encode()
    missing = await cloud_client.post(URL, content=body)
    assert missing.status_code == 401
    wrong = await cloud_client.post(
        URL, content=body, headers={"X-Hub-Signature-256": sign(body, "other-secret")})
    assert wrong.status_code == 403
    garbage = await cloud_client.post(URL, content=body, headers={"X-Hub-Signature-256": "md5=1"})
    assert garbage.status_code == 403
    # a valid signature of a different body does not cover this one
    tampered = body.replace(b"hola", b"HOLA")
    replay = await cloud_client.post(
        URL, content=tampered, headers={"X-Hub-Signature-256": sign(body)})
    assert replay.status_code == 403
    assert await count_messages(cloud_runtime) == 0


async def test_truncated_json_is_400_and_nothing_stored(
    cloud_client: httpx.AsyncClient, cloud_runtime: Runtime
) -> None:
    body = json.dumps(envelope(messages=[text_message("hola", "wamid.trunc")])).encode()
    response = await post_signed(cloud_client, body[: len(body) // 2])
    assert response.status_code == 400 and "JSON" in response.json()["detail"]
    wrong_shape = await post_signed(cloud_client, {"object": "page", "entry": []})
    assert wrong_shape.status_code == 400
    no_id = await post_signed(cloud_client, envelope(messages=[{"from": "5215512345678"}]))
    assert no_id.status_code == 400
    assert await count_messages(cloud_runtime) == 0


async def test_duplicate_delivery_is_stored_once(
    cloud_client: httpx.AsyncClient, cloud_runtime: Runtime
) -> None:
    payload = envelope(messages=[text_message("¿cuánto cuesta el seguro de auto?", "wamid.dup")])
    first = await post_signed(cloud_client, payload)
    second = await post_signed(cloud_client, payload)
    assert first.status_code == second.status_code == 200
    assert first.json()["stored"] == 1 and second.json()["duplicates"] == 1
    assert await count_messages(cloud_runtime, direction="in") == 1


async def test_meta_sample_payload_kinds(
    cloud_client: httpx.AsyncClient, cloud_runtime: Runtime
) -> None:
    wa = "5215512345678"
    messages = [
        {"from": wa, "id": "wamid.audio", "timestamp": "1749416383", "type": "audio",
         "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "abc=",
                   "id": "1003383421387256", "voice": True}},
        {"from": wa, "id": "wamid.image", "timestamp": "1749416384", "type": "image",
         "image": {"caption": "mi póliza", "mime_type": "image/jpeg", "sha256": "def=",
                   "id": "1479537139650973"}},
        {"from": wa, "id": "wamid.doc", "timestamp": "1749416385", "type": "document",
         "document": {"caption": "ine", "filename": "INE frente.pdf",
                      "mime_type": "application/pdf", "sha256": "ghi=", "id": "1003383421387257"}},
        {"from": wa, "id": "wamid.button", "timestamp": "1749416386", "type": "interactive",
         "interactive": {"type": "button_reply",
                         "button_reply": {"id": "cotizar", "title": "Cotizar auto"}}},
        {"from": wa, "id": "wamid.list", "timestamp": "1749416387", "type": "interactive",
         "interactive": {"type": "list_reply", "list_reply": {
             "id": "gmm", "title": "Gastos médicos", "description": "Seguro GMM"}}},
        {"from": wa, "id": "wamid.quick", "timestamp": "1749416388", "type": "button",
         "context": {"from": "15550783881", "id": "wamid.tpl"},
         "button": {"payload": "SI_PAGO", "text": "Sí, ya pagué"}},
        {"from": wa, "id": "wamid.unsupported", "timestamp": "1749416389", "type": "unsupported",
         "errors": [{"code": 131051, "title": "Message type unknown",
                     "message": "Message type unknown",
                     "error_data": {"details": "Message type is currently not supported."}}]},
        {"from": wa, "id": "wamid.reaction", "timestamp": "1749416390", "type": "reaction",
         "reaction": {"message_id": "wamid.x", "emoji": "👍"}},
    ]
    response = await post_signed(cloud_client, envelope(messages=messages))
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == len(messages)
    async with cloud_runtime.sessions() as s:
        rows = {
            m.provider_message_id: m
            for m in (await s.execute(select(Message).where(Message.direction == "in"))).scalars()
        }
    assert rows["wamid.audio"].kind == "voice"
    assert rows["wamid.audio"].media["provider_media_id"] == "1003383421387256"
    assert rows["wamid.image"].kind == "image" and rows["wamid.image"].text == "mi póliza"
    assert rows["wamid.doc"].kind == "document"
    assert rows["wamid.doc"].media["filename"] == "INE frente.pdf"
    assert rows["wamid.button"].kind == "text" and rows["wamid.button"].text == "Cotizar auto"
    assert rows["wamid.list"].text == "Gastos médicos"
    assert rows["wamid.quick"].text == "Sí, ya pagué"
    assert rows["wamid.unsupported"].kind == "unknown"
    assert rows["wamid.unsupported"].raw["cloud"]["errors"][0]["code"] == 131051
    assert rows["wamid.reaction"].kind == "unknown"


async def test_media_downloaded_into_the_store_or_kept_with_reason(
    cloud_client: httpx.AsyncClient, cloud_runtime: Runtime, fake_graph: FakeGraph
) -> None:
    picture = png(64, 48)
    fake_graph.media["1479537139650973"] = ("image/png", picture)
    wa = "5215512345678"
    messages = [
        {"from": wa, "id": "wamid.img-ok", "timestamp": "1749416384", "type": "image",
         "image": {"caption": "mi póliza", "mime_type": "image/png", "sha256": "x",
                   "id": "1479537139650973"}},
        {"from": wa, "id": "wamid.img-gone", "timestamp": "1749416385", "type": "image",
         "image": {"mime_type": "image/jpeg", "sha256": "y", "id": "999000111"}},
    ]
    response = await post_signed(cloud_client, envelope(messages=messages))
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 2, "duplicates": 0, "statuses": 0, "media_failed": 1}
    async with cloud_runtime.sessions() as s:
        rows = {m.provider_message_id: m for m in (await s.execute(
            select(Message).where(Message.direction == "in"))).scalars()}
    ok = rows["wamid.img-ok"].media
    assert ok and ok["key"] and ok["provider_media_id"] == "1479537139650973"
    stored = b"".join([c async for c in cloud_runtime.media.read(ok["key"])])
    assert stored == picture
    # the Graph API was asked with our token, for the id, then for the bytes
    gets = [r for r in fake_graph.requests if r.method == "GET"]
    assert gets[0].path.endswith("/1479537139650973")
    assert all(r.headers["Authorization"] == "Bearer EAAG-test-token" for r in gets)
    gone = rows["wamid.img-gone"]
    assert gone.kind == "image" and gone.media and gone.media["key"] is None
    assert gone.raw and "media_error" in gone.raw
