"""An agent's voice note, end to end: recorded in any format → OGG/Opus in the store → the
outbox → the simulator channel; bad recordings are refused with a reason and leave nothing."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bot.errors import MediaRejected
from bot.media.sniff import sniff
from bot.speech.agent_notes import AgentVoiceNotes
from bot.speech.audio import decode
from bot.wiring.runtime import Runtime
from handoff.conversations import Message
from tests.conftest import ask

PHONE = "+525577776666"  # already E.164 as stored (the +521 form is folded into +52)
Headers = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture(scope="module")
def agent_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a browser or phone records: 44.1 kHz stereo, here m4a (AAC), not Opus."""
    root = tmp_path_factory.mktemp("agent")
    wav = root / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-v", "es-419", "-w", str(wav),
         "Hola, le habla Ana de la aseguradora. Ya quedó registrado su siniestro."],
        check=True,
    )
    target = root / "agente.m4a"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-ar", "44100", "-ac", "2",
         "-c:a", "aac", str(target)], check=True,
    )
    return target


async def _escalated(client: httpx.AsyncClient) -> uuid.UUID:
    outcome = await ask(client, "quiero hablar con un asesor por favor", phone=PHONE)
    assert outcome["owner"] == "queued", outcome
    return uuid.UUID(str(outcome["conversation_id"]))


async def _stored_files(runtime: Runtime) -> list[Path]:
    root = runtime.settings.data_dir / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def _outbound_count(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        count: int = (await session.execute(
            select(func.count()).select_from(Message).where(Message.direction == "out")
        )).scalar_one()
    return count


async def test_agent_voice_note_leaves_as_ogg_opus_through_the_simulator(
    runtime: Runtime, client: httpx.AsyncClient, auth_headers: Headers, agent_recording: Path
) -> None:
    conversation_id = await _escalated(client)
    headers = await auth_headers("agent")
    async with runtime.events.subscribe(f"sim:{PHONE}") as delivered:
        response = await client.post(
            f"/api/v1/conversations/{conversation_id}/voice", headers=headers,
            files={"audio": ("agente.m4a", agent_recording.read_bytes(), "audio/mp4")},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["owner"] == "human"  # sending claims the queued conversation
        event = await asyncio.wait_for(delivered.get(), 15)
        while event.get("kind") != "voice":
            event = await asyncio.wait_for(delivered.get(), 15)

    # The simulator channel received a voice note in WhatsApp's format, not the m4a.
    assert event["author"] == "agent" and event["media"]["mime_type"] == "audio/ogg"
    async with runtime.sessions() as session:
        row = (await session.execute(
            select(Message).where(Message.id == uuid.UUID(body["message_id"]))
        )).scalar_one()
    assert row.direction == "out" and row.kind == "voice" and row.author == "agent"
    assert row.status == "sent" and row.provider_message_id == f"sim-{row.id}"
    assert row.media is not None and row.media["key"] == event["media"]["key"]
    stored = b"".join([c async for c in runtime.media.read(row.media["key"])])
    assert stored.startswith(b"OggS") and b"OpusHead" in stored[:200]
    found = sniff(stored)
    assert found is not None and found.mime_type == "audio/ogg"
    original = decode(agent_recording.read_bytes(), mime_type="audio/mp4", max_seconds=60)
    sent = decode(stored, mime_type="audio/ogg", max_seconds=60)
    assert abs(sent.duration - original.duration) < 0.2

    # The inbox shows it in the thread, and the agent can play it back.
    view = (await client.get(f"/api/v1/conversations/{conversation_id}", headers=headers)).json()
    mine = [m for m in view["messages"] if m["id"] == body["message_id"]]
    assert mine and mine[0]["kind"] == "voice" and mine[0]["author"] == "agent"
    played = await client.get(f"/api/v1/media/messages/{body['message_id']}/content",
                              headers=headers)
    assert played.status_code == 200 and played.content == stored
    assert played.headers["content-type"] == "audio/ogg"


@pytest.mark.parametrize(
    ("payload", "filename", "mime_type", "reason"),
    [
        (b"", "vacio.webm", "audio/webm", "audio unusable: the recording is empty"),
        (b"%PDF-1.4\n" + b"x" * 4000, "nota.ogg", "audio/ogg", "audio unusable"),
        (b"esto no es audio" * 300, "nota.mp3", "audio/mpeg", "audio unusable"),
    ],
    ids=["empty", "pdf", "garbage"],
)
async def test_bad_recordings_are_refused_and_store_nothing(
    runtime: Runtime, client: httpx.AsyncClient, auth_headers: Headers, payload: bytes,
    filename: str, mime_type: str, reason: str,
) -> None:
    conversation_id = await _escalated(client)
    before = await _outbound_count(runtime)
    response = await client.post(
        f"/api/v1/conversations/{conversation_id}/voice", headers=await auth_headers("agent"),
        files={"audio": (filename, payload, mime_type)},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["msg"].startswith(reason)
    assert await _stored_files(runtime) == []
    assert await _outbound_count(runtime) == before
    # The app keeps working: the customer's next message is answered.
    assert (await ask(client, "gracias", phone=PHONE))["status"] == "processed"


async def test_three_hour_recording_is_refused_from_its_header(
    runtime: Runtime, client: httpx.AsyncClient, auth_headers: Headers, long_recording: Path
) -> None:
    conversation_id = await _escalated(client)
    started = asyncio.get_running_loop().time()
    response = await client.post(
        f"/api/v1/conversations/{conversation_id}/voice", headers=await auth_headers("agent"),
        files={"audio": ("largo.mp3", long_recording.read_bytes(), "audio/mpeg")},
    )
    assert response.status_code == 422
    assert "lasts 108" in response.json()["detail"][0]["msg"]  # ~10 800 s, from the header
    assert asyncio.get_running_loop().time() - started < 5  # not decoded, not converted
    assert await _stored_files(runtime) == []


async def test_a_refused_reply_removes_the_converted_note(
    runtime: Runtime, client: httpx.AsyncClient, auth_headers: Headers, agent_recording: Path
) -> None:
    conversation_id = await _escalated(client)
    owner = await auth_headers("agent")
    assert (await client.post(f"/api/v1/conversations/{conversation_id}/claim",
                              headers=owner)).status_code == 200
    files_before = await _stored_files(runtime)
    other = await client.post(
        f"/api/v1/conversations/{conversation_id}/voice", headers=await auth_headers("agent"),
        files={"audio": ("agente.m4a", agent_recording.read_bytes(), "audio/mp4")},
    )
    assert other.status_code == 409, other.text  # another agent's conversation
    assert await _stored_files(runtime) == files_before
    nobody = await client.post(
        f"/api/v1/conversations/{conversation_id}/voice",
        files={"audio": ("agente.m4a", agent_recording.read_bytes(), "audio/mp4")},
    )
    assert nobody.status_code == 401


async def test_oversize_recording_stops_at_the_cap(runtime: Runtime) -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield b"\x00" * 65536

    notes = AgentVoiceNotes(media=runtime.media, handoff=runtime.handoff,
                            max_bytes=200_000, max_seconds=600)
    from handoff.auth import Principal
    from handoff.roles import Role

    agent = Principal(uuid.uuid4(), "a@b.mx", "A", Role.AGENT)
    with pytest.raises(MediaRejected, match="larger than 200000 bytes"):
        await notes.send(agent, uuid.uuid4(), endless(), mime_type="audio/ogg")
    assert pulled <= 4  # stopped reading at the cap
    assert await _stored_files(runtime) == []
