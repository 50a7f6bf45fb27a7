"""Cloud API outbound media: voice notes, images and documents are uploaded from our media
store (multipart ``POST /{phone-number-id}/media``) and sent by media id, against the fake
Graph API; retries and the 24-hour window as for text."""

from __future__ import annotations

import io
import math
import struct
import uuid
import wave
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from bot.channels.cloud_api import CLOUD_CHANNEL
from bot.messages import MessageKind
from bot.wiring.runtime import Runtime
from handoff.conversations import Message
from tests.channels.conftest import PHONE_NUMBER_ID
from tests.channels.fake_graph import FakeGraph
from tests.channels.test_cloud_send import _conversation_with_reply, _status_of

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5f0000000049454e44ae426082"
)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _wav(seconds: float = 0.6) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 16000)))
            for i in range(int(16000 * seconds))))
    return buf.getvalue()


async def _pending_media(
    rt: Runtime, conversation_id: uuid.UUID, kind: MessageKind, data: bytes, mime: str,
    *, filename: str | None = None, caption: str | None = None,
) -> uuid.UUID:
    ref = await rt.media.save(_chunks(data), kind=kind, mime_type=mime, filename=filename)
    mid = uuid.uuid4()
    async with rt.sessions() as s, s.begin():
        s.add(Message(id=mid, conversation_id=conversation_id, direction="out", author="agent",
                      kind=kind.value, channel=CLOUD_CHANNEL, status="pending", text=caption,
                      media=asdict(ref)))
    return mid


async def test_image_document_and_voice_are_uploaded_and_sent_by_id(
    cloud_client: httpx.AsyncClient, cloud_runtime: Runtime, fake_graph: FakeGraph
) -> None:
    rt = cloud_runtime
    out = await _conversation_with_reply(cloud_client, rt)
    sends_before = len(fake_graph.sends())
    image = await _pending_media(rt, out.conversation_id, MessageKind.IMAGE, PNG, "image/png",
                                 caption="Así se ve su póliza 📄")
    doc = await _pending_media(rt, out.conversation_id, MessageKind.DOCUMENT, PDF,
                               "application/pdf", filename="poliza-auto.pdf",
                               caption="Su póliza")
    voice = await _pending_media(rt, out.conversation_id, MessageKind.VOICE, _wav(),
                                 "audio/wav", filename="respuesta.wav")
    assert await rt.outbox.send_pending(out.conversation_id) == 3
    for mid in (image, doc, voice):
        assert (await _status_of(rt, mid))[0] == "sent"

    uploads = fake_graph.upload_requests()
    assert [r.path for r in uploads] == [f"/v21.0/{PHONE_NUMBER_ID}/media"] * 3
    assert all(r.headers["Authorization"] == "Bearer EAAG-test-token" for r in uploads)
    img_up, doc_up, voice_up = (r.body for r in uploads)
    assert img_up.fields == {"messaging_product": "whatsapp", "type": "image/png"}
    assert img_up.data == PNG and img_up.content_type == "image/png"
    assert doc_up.data == PDF and doc_up.filename == "poliza-auto.pdf"
    assert doc_up.fields["type"] == "application/pdf"
    # the WAV became an OGG/Opus voice note before it left
    assert voice_up.fields["type"] == "audio/ogg" and voice_up.content_type == "audio/ogg"
    assert voice_up.data.startswith(b"OggS") and b"OpusHead" in voice_up.data[:200]

    sends = fake_graph.sends()[sends_before:]
    ids = {up.data: media_id for media_id, up in fake_graph.uploads.items()}
    base = {"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": "525512345678"}
    assert sends[0].body == {**base, "type": "image",
                             "image": {"id": ids[PNG], "caption": "Así se ve su póliza 📄"}}
    assert sends[1].body == {**base, "type": "document", "document": {
        "id": ids[PDF], "caption": "Su póliza", "filename": "poliza-auto.pdf"}}
    assert sends[2].body == {**base, "type": "audio", "audio": {"id": ids[voice_up.data]}}
    async with rt.sessions() as s:
        wamids = (await s.execute(select(Message.provider_message_id).where(
            Message.id.in_([image, doc, voice])))).scalars().all()
    assert all(w and w.startswith("wamid.fake") for w in wamids)


async def test_upload_retries_on_429_and_5xx(
    cloud_client: httpx.AsyncClient, cloud_runtime: Runtime, fake_graph: FakeGraph
) -> None:
    rt = cloud_runtime
    out = await _conversation_with_reply(cloud_client, rt)
    fake_graph.script.append((429, {"Retry-After": "0"}, {"error": {"code": 130429,
                              "message": "Rate limit hit"}}))
    fake_graph.script.append((503, {}, {"error": {"code": 2, "message": "unavailable"}}))
    mid = await _pending_media(rt, out.conversation_id, MessageKind.IMAGE, PNG, "image/png")
    assert await rt.outbox.send_pending(out.conversation_id) == 1
    assert (await _status_of(rt, mid))[0] == "sent"
    uploads = fake_graph.upload_requests()
    assert len(uploads) == 3 and all(r.body.data == PNG for r in uploads)  # whole body resent
    assert len(fake_graph.uploads) == 1


async def test_long_rate_limit_keeps_the_media_pending(
    cloud_client: httpx.AsyncClient, cloud_runtime: Runtime, fake_graph: FakeGraph
) -> None:
    rt = cloud_runtime
    out = await _conversation_with_reply(cloud_client, rt)
    fake_graph.script.append((429, {"Retry-After": "600"}, {}))
    mid = await _pending_media(rt, out.conversation_id, MessageKind.DOCUMENT, PDF,
                               "application/pdf", filename="cotizacion.pdf")
    sends_before = len(fake_graph.sends())
    assert await rt.outbox.send_pending(out.conversation_id) == 0
    status, error = await _status_of(rt, mid)
    assert status == "pending" and error and "429" in error
    assert len(fake_graph.sends()) == sends_before
    assert await rt.outbox.send_pending(out.conversation_id) == 1  # later: it goes out once
    assert (await _status_of(rt, mid))[0] == "sent"


async def test_media_outside_the_window_is_refused_before_upload(
    cloud_client: httpx.AsyncClient, cloud_runtime: Runtime, fake_graph: FakeGraph
) -> None:
    rt = cloud_runtime
    out = await _conversation_with_reply(cloud_client, rt)
    async with rt.sessions() as s, s.begin():
        await s.execute(update(Message).where(Message.direction == "in")
                        .values(created_at=Message.created_at - timedelta(hours=25)))
    mid = await _pending_media(rt, out.conversation_id, MessageKind.IMAGE, PNG, "image/png")
    sends_before = len(fake_graph.sends())
    await rt.outbox.send_pending(out.conversation_id)
    status, error = await _status_of(rt, mid)
    assert status == "failed" and error and "24 hours" in error
    assert fake_graph.upload_requests() == [] and len(fake_graph.sends()) == sends_before


async def test_missing_or_unconvertible_media_fails_with_a_reason(
    cloud_client: httpx.AsyncClient, cloud_runtime: Runtime, fake_graph: FakeGraph
) -> None:
    rt = cloud_runtime
    out = await _conversation_with_reply(cloud_client, rt)
    gone = await _pending_media(rt, out.conversation_id, MessageKind.IMAGE, PNG, "image/png")
    async with rt.sessions() as s:
        key = (await s.execute(select(Message.media).where(Message.id == gone))).scalar_one()
    await rt.media.delete(key["key"])
    broken = await _pending_media(rt, out.conversation_id, MessageKind.VOICE,
                                  b"RIFF\x24\x00\x00\x00WAVEjunk" + b"\x00" * 64,
                                  "audio/wav")
    text_after = uuid.uuid4()
    async with rt.sessions() as s, s.begin():
        s.add(Message(id=text_after, conversation_id=out.conversation_id, direction="out",
                      author="agent", kind="text", channel=CLOUD_CHANNEL, status="pending",
                      text="¿Me la reenvía, porfa?"))
    await rt.outbox.send_pending(out.conversation_id)
    status, error = await _status_of(rt, gone)
    assert status == "failed" and error and key["key"] in error
    status, error = await _status_of(rt, broken)
    assert status == "failed" and error and "voice note" in error
    assert fake_graph.upload_requests() == []
    assert (await _status_of(rt, text_after))[0] == "sent"  # the next message is unaffected
