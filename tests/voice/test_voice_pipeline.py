"""Voice notes and media end to end: simulator upload → store → transcript → same responder."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from bot.messages import InboundMessage, MessageKind
from bot.wiring.runtime import Runtime
from handoff.conversations import Conversation, Message
from tests.conftest import ask, staff_outcome
from tests.voice.conftest import CountingTranscriber, chunks_of, png, send_voice


async def _stored_media(runtime: Runtime) -> list[Path]:
    root = runtime.settings.data_dir / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_voice_question_gets_transcript_and_answer(
    voice_client: httpx.AsyncClient, voice_runtime: Runtime, clips: dict[str, Path]
) -> None:
    accepted, outcome = await send_voice(voice_client, clips["human"].read_bytes())
    assert accepted.status_code == 202, accepted.text
    assert outcome is not None and outcome["status"] == "processed"
    transcript = str(outcome["transcript"]).lower()
    assert "asesor" in transcript, transcript
    # The transcript went through the same rules as text: a request for a person.
    assert outcome["intent"] == "human_request" and outcome["escalated"] is True
    assert outcome["owner"] == "queued"
    assert outcome["replies"] and "persona" in str(outcome["replies"][0])

    async with voice_runtime.sessions() as session:
        row = (await session.execute(
            select(Message).where(Message.id == uuid.UUID(str(outcome["message_id"])))
        )).scalar_one()
    assert row.kind == "voice" and row.media is not None
    assert row.media["mime_type"] == "audio/ogg" and len(row.media["sha256"]) == 64
    assert row.media["size"] == clips["human"].stat().st_size
    stored = voice_runtime.media.read(row.media["key"])
    assert b"".join([c async for c in stored]) == clips["human"].read_bytes()


async def test_retried_job_does_not_transcribe_twice(
    voice_client: httpx.AsyncClient, voice_runtime: Runtime, clips: dict[str, Path],
    counting: CountingTranscriber,
) -> None:
    _, outcome = await send_voice(voice_client, clips["quote"].read_bytes())
    assert outcome is not None and "seguro" in str(outcome["transcript"]).lower()
    assert counting.calls == 1
    message_id = uuid.UUID(str(outcome["message_id"]))
    # As if the job died after the transcript was stored but before the decision committed.
    async with voice_runtime.sessions() as session, session.begin():
        await session.execute(
            update(Message).where(Message.in_reply_to == message_id).values(in_reply_to=None)
        )
        await session.execute(
            update(Message).where(Message.id == message_id).values(status="received")
        )
    await voice_runtime.pipeline.process_conversation(uuid.UUID(str(outcome["conversation_id"])))
    assert counting.calls == 1
    again = await voice_client.get(f"/api/v1/simulator/messages/{message_id}")
    assert again.json()["status"] == "processed"
    assert again.json()["transcript"] == outcome["transcript"]


async def test_corrupt_and_silent_voice_notes_get_a_clear_message(
    voice_client: httpx.AsyncClient, voice_runtime: Runtime, tmp_path: Path,
    counting: CountingTranscriber,
) -> None:
    corrupt = b"OggS" + b"\x00" * 300 + b"no es audio" * 100
    accepted, outcome = await send_voice(voice_client, corrupt)
    assert accepted.status_code == 202 and outcome is not None
    assert outcome["status"] == "processed" and outcome["transcript"] is None
    assert "dañada" in str(outcome["replies"][0]) and outcome["owner"] == "bot"

    silent = tmp_path / "silence.ogg"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono",
         "-t", "3", "-c:a", "libopus", str(silent)], check=True,
    )
    _, outcome = await send_voice(voice_client, silent.read_bytes())
    assert outcome is not None and "no se escucha" in str(outcome["replies"][0])
    assert counting.calls == 0  # both stopped at decoding, before any model ran

    # The worker keeps running: the next text is answered normally.
    answer = await ask(voice_client, "hola buenas tardes")
    assert answer["intent"] == "greeting" and answer["replies"]


async def test_three_hour_recording_is_refused_before_transcribing(
    voice_client: httpx.AsyncClient, long_recording: Path, counting: CountingTranscriber,
) -> None:
    accepted, outcome = await send_voice(
        voice_client, long_recording.read_bytes(), filename="largo.mp3", mime_type="audio/mpeg"
    )
    assert accepted.status_code == 202 and outcome is not None
    assert outcome["transcript"] is None and "demasiado larga" in str(outcome["replies"][0])
    assert counting.calls == 0


@pytest.mark.parametrize(
    ("payload", "filename", "mime_type", "reason"),
    [
        (b"", "nota.ogg", "audio/ogg", "empty"),
        (b"%PDF-1.4\n" + b"x" * 500, "nota.ogg", "audio/ogg", "application/pdf"),
        (png(100, 100), "nota.ogg", "audio/ogg", "image/png is not accepted as voice"),
    ],
    ids=["empty", "pdf-as-voice", "png-as-voice"],
)
async def test_wrong_uploads_are_refused_with_a_reason_and_store_nothing(
    voice_client: httpx.AsyncClient, voice_runtime: Runtime, payload: bytes, filename: str,
    mime_type: str, reason: str,
) -> None:
    accepted, _ = await send_voice(voice_client, payload, filename=filename, mime_type=mime_type)
    assert accepted.status_code == 422 and reason in accepted.json()["detail"][0]["msg"]
    assert await _stored_media(voice_runtime) == []
    async with voice_runtime.sessions() as session:
        assert (await session.execute(select(Message.id))).first() is None


async def test_bad_phone_stores_no_media(
    voice_client: httpx.AsyncClient, voice_runtime: Runtime, clips: dict[str, Path]
) -> None:
    accepted, _ = await send_voice(voice_client, clips["quote"].read_bytes(), phone="abc")
    assert accepted.status_code == 422
    assert await _stored_media(voice_runtime) == []


async def _image_message(runtime: Runtime, caption: str | None) -> InboundMessage:
    ref = await runtime.media.save(
        chunks_of(png(800, 600)), kind=MessageKind.IMAGE, mime_type="image/png",
        filename="choque.png",
    )
    return InboundMessage(
        channel="simulator", account="demo", provider_message_id=f"img-{uuid.uuid4()}",
        sender_phone="+5215511112222", kind=MessageKind.IMAGE, received_at=datetime.now(UTC),
        text=caption, media=ref,
    )


async def test_photo_is_stored_acknowledged_and_escalated(
    voice_client: httpx.AsyncClient, voice_runtime: Runtime
) -> None:
    message = await _image_message(voice_runtime, "mira como quedó mi carro 😭")
    accepted = await voice_runtime.ingestor.accept(message)
    outcome = (await staff_outcome(voice_client, voice_runtime, accepted.message_id)).json()
    assert outcome["escalated"] is True and outcome["owner"] == "queued"
    assert len(outcome["replies"]) == 1  # one message: the photo arrived + the handoff notice
    assert outcome["replies"][0].startswith("¡Gracias! Recibí tu imagen")
    async with voice_runtime.sessions() as session:
        conversation = (await session.execute(
            select(Conversation).where(Conversation.id == accepted.conversation_id)
        )).scalar_one()
        row = (await session.execute(
            select(Message).where(Message.id == accepted.message_id)
        )).scalar_one()
    assert conversation.owner_reason == "media_needs_person"
    # The photo is in the store, reachable by the inbox through a signed link.
    assert row.media is not None and row.media["mime_type"] == "image/png"
    link = await voice_runtime.media.url(row.media["key"])
    fetched = await voice_client.get(link)
    assert fetched.status_code == 200 and fetched.content == png(800, 600)
