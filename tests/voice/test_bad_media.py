"""Bad media from a real channel: refused before it is stored, the customer told plainly,
a log line with the ids, the worker still answering the next message."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from bot.channels.wa_events import IncomingMessage, WaAddress
from bot.channels.whatsapp import LidDirectory, WhatsAppInbound
from bot.errors import AudioUnusable
from bot.messages import MessageKind
from bot.speech.audio import decode
from bot.wiring.runtime import Runtime
from handoff.conversations import Message
from tests.conftest import ask, staff_outcome
from tests.voice.conftest import send_voice

PHONE = "+525588887777"


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("foto.jpg", b"\x00" * 50_000_000)  # 50 MB packed into ~50 KB
    return buffer.getvalue()


def _inbound(runtime: Runtime, *, max_bytes: int = 16 * 1024 * 1024) -> WhatsAppInbound:
    """The WhatsApp-Web channel's inbound side, on this runtime's ingestor and media store."""
    return WhatsAppInbound(
        ingestor=runtime.ingestor, receipts=runtime.receipts,
        lids=LidDirectory(runtime.sessions), media=runtime.media, media_max_bytes=max_bytes,
    )


def _event(kind: MessageKind, mime_type: str, data: bytes, *, text: str | None = None,
           filename: str | None = None) -> IncomingMessage:
    async def download() -> bytes:
        return data

    return IncomingMessage(
        account="5215500000000", message_id=f"3EB0{uuid.uuid4().hex[:12].upper()}",
        peer=WaAddress(phone=PHONE, lid=None), kind=kind, at=datetime.now(UTC), text=text,
        mime_type=mime_type, filename=filename, download=download,
    )


def _stored_files(runtime: Runtime) -> list[Path]:
    root = runtime.settings.data_dir / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def _outcome(
    client: httpx.AsyncClient, runtime: Runtime, message_id: uuid.UUID
) -> dict[str, object]:
    # a WhatsApp message: only staff may read its outcome
    response = await staff_outcome(client, runtime, message_id, wait=30)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


@pytest.mark.parametrize(
    ("kind", "mime_type", "payload", "reply", "reason"),
    [
        (MessageKind.IMAGE, "image/jpeg", _zip_bomb(), "no la pude abrir",
         "application/zip is not accepted as image"),
        (MessageKind.DOCUMENT, "application/pdf", b"MZ\x90\x00" + b"\x00" * 4000,
         "no lo pude abrir", "unrecognised file type"),
        (MessageKind.VOICE, "audio/ogg; codecs=opus", b"%PDF-1.4\n" + b"x" * 3000,
         "no la pude recibir", "application/pdf is not accepted as voice"),
    ],
    ids=["zip-bomb-as-photo", "exe-as-pdf", "pdf-as-voice-note"],
)
async def test_refused_media_from_whatsapp(
    voice_runtime: Runtime, voice_client: httpx.AsyncClient, kind: MessageKind, mime_type: str,
    payload: bytes, reply: str, reason: str,
) -> None:
    event = _event(kind, mime_type, payload, filename="archivo")
    with capture_logs() as logs:
        accepted = await _inbound(voice_runtime).message(event)
        outcome = await _outcome(voice_client, voice_runtime, accepted.message_id)

    # Kept (never lost), without media; nothing half-written in the store.
    assert _stored_files(voice_runtime) == []
    async with voice_runtime.sessions() as session:
        row = (await session.execute(
            select(Message).where(Message.id == accepted.message_id))).scalar_one()
    assert row.kind == kind.value and row.media is not None and row.media["key"] is None
    assert row.raw is not None and reason in row.raw["media_error"]
    # The customer is told what happened and what to do; no person is paged for nothing.
    replies = outcome["replies"]
    assert isinstance(replies, list) and len(replies) == 1 and reply in replies[0], outcome
    assert outcome["escalated"] is False and outcome["owner"] == "bot"
    # A log line names the message.
    failed = [e for e in logs if e["event"] == "whatsapp.media_failed"]
    assert failed and failed[0]["wamid"] == event.message_id and reason in failed[0]["error"]
    # The worker keeps going.
    answer = await ask(voice_client, "hola, buenas tardes", phone=PHONE)
    assert answer["intent"] == "greeting" and answer["replies"]


async def test_oversize_whatsapp_media_is_refused_before_storing(
    voice_runtime: Runtime, voice_client: httpx.AsyncClient,
) -> None:
    big = b"OggS" + b"\x00" * 300_000
    event = _event(MessageKind.VOICE, "audio/ogg; codecs=opus", big)
    accepted = await _inbound(voice_runtime, max_bytes=100_000).message(event)
    outcome = await _outcome(voice_client, voice_runtime, accepted.message_id)
    assert _stored_files(voice_runtime) == []
    assert "no la pude recibir" in str(outcome["replies"]), outcome


async def test_corrupt_voice_note_is_logged_with_its_ids(
    voice_runtime: Runtime, voice_client: httpx.AsyncClient,
) -> None:
    with capture_logs() as logs:
        _, outcome = await send_voice(voice_client, b"OggS" + b"\x00" * 300 + b"roto" * 200)
    assert outcome is not None and "dañada" in str(outcome["replies"])
    lines = [e for e in logs if e["event"] == "voice.unusable"]
    assert lines, logs
    assert lines[0]["message_id"] == outcome["message_id"]
    assert lines[0]["conversation_id"] == outcome["conversation_id"]
    assert lines[0]["code"] == "corrupt"


def test_three_hours_are_refused_from_the_header(long_recording: Path) -> None:
    data = long_recording.read_bytes()
    started = time.perf_counter()
    with pytest.raises(AudioUnusable) as caught:
        decode(data, mime_type="audio/mpeg", max_seconds=600)
    elapsed = time.perf_counter() - started
    assert caught.value.code == "too_long"
    # The declared length, read before decoding: three hours, not "more than 600 s".
    assert "lasts 108" in caught.value.reason
    assert elapsed < 1.0, elapsed  # decoding 3 h of MP3 would take many seconds

