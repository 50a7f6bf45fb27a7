"""The inbox in a real headless Chromium: a voice note's transcript beside a player, a photo
shown as a photo, a document as a download, all from the authenticated media route; the
agent answers with a voice note of their own."""

from __future__ import annotations

import shutil
import struct
import subprocess
import uuid
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.messages import InboundMessage, MediaRef, MessageKind
from bot.settings import Settings
from bot.speech.faster import FasterWhisperTranscriber
from bot.speech.litellm_transcriber import LiteLLMTranscriber
from bot.speech.service import SpeechService
from bot.wiring.runtime import Runtime
from handoff.conversations import Message
from handoff.roles import Role
from knowledge.embeddings import Embedder
from tests.browsers import ARGS
from tests.conftest import staff_outcome
from tests.voice.conftest import ScriptedProvider, chunks_of, serve

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None,
                                reason="chromium is a test system tool")

# What the transcription provider hears: customer words, so hostile markup must stay text.
HOSTILE = 'Quiero un asesor <img src=x onerror="window.__xss=1"> <b>urgente</b>'
DOC_NAME = 'póliza <img src=x onerror="window.__xss=3"> & 2024.pdf'
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
PHONE = "+525566665555"
PASSWORD = "clave-larga-123"


def real_png(width: int, height: int) -> bytes:
    """A small PNG a browser can decode (a grey gradient)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data)
        )

    rows = b"".join(b"\x00" + bytes((x * 4) % 256 for x in range(width)) * 3
                    for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


@pytest.fixture
async def media_runtime(
    settings: Settings, database_url: str, redis_url: str, kb_embedder: Embedder,
    provider: ScriptedProvider, faster: FasterWhisperTranscriber,
) -> AsyncIterator[Runtime]:
    provider.text = HOSTILE
    remote = LiteLLMTranscriber("openai/whisper-1", api_base=provider.url, api_key="sk-test",
                                timeout=10)
    speech = SpeechService(local=faster, provider=remote, language="es")
    rt = await Runtime.create(settings, database_url=database_url, redis_url=redis_url,
                              speech=speech, embedder=kb_embedder)
    rt.start_worker()
    yield rt
    await rt.close()


async def _deliver(
    runtime: Runtime, http: httpx.AsyncClient, kind: MessageKind, data: bytes, mime_type: str,
    *, filename: str | None = None, text: str | None = None,
) -> tuple[uuid.UUID, uuid.UUID]:
    ref: MediaRef = await runtime.media.save(chunks_of(data), kind=kind, mime_type=mime_type,
                                             filename=filename)
    accepted = await runtime.ingestor.accept(InboundMessage(
        channel="simulator", account="demo", provider_message_id=f"m-{uuid.uuid4()}",
        sender_phone=PHONE, kind=kind, received_at=datetime.now(UTC), media=ref, text=text,
    ))
    done = await staff_outcome(http, runtime, accepted.message_id, wait=60)
    assert done.json()["status"] == "processed", done.text
    return accepted.conversation_id, accepted.message_id


async def test_inbox_plays_voice_notes_beside_their_transcript(
    media_runtime: Runtime, clips: dict[str, Path], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    agent_wav = tmp_path / "respuesta.wav"
    subprocess.run(["espeak-ng", "-v", "es-419", "-w", str(agent_wav),
                    "Claro, ya reviso su póliza."], check=True)
    await media_runtime.auth.create_user(email="ana@seguros.mx", name="Ana", role=Role.AGENT,
                                         password=PASSWORD)
    async with serve(media_runtime) as base, httpx.AsyncClient(base_url=base, timeout=70) as http:
        conversation_id, voice_id = await _deliver(
            media_runtime, http, MessageKind.VOICE, clips["human"].read_bytes(), "audio/ogg")
        _, photo_id = await _deliver(media_runtime, http, MessageKind.IMAGE, real_png(64, 48),
                                     "image/png", filename="choque.png", text="mi carro 😭")
        _, doc_id = await _deliver(media_runtime, http, MessageKind.DOCUMENT, PDF,
                                   "application/pdf", filename=DOC_NAME)
        voice_src = f"/api/v1/media/messages/{voice_id}/content"

        # Without a login the media route answers 401, whatever the id.
        assert (await http.get(voice_src)).status_code == 401

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=shutil.which("chromium"), headless=True, args=ARGS)
            try:
                page = await browser.new_page()
                await page.goto(f"{base}/login?next=/inbox/conversations/{conversation_id}")
                await page.fill("input[name=email]", "ana@seguros.mx")
                await page.fill("input[name=password]", PASSWORD)
                await page.click("button[type=submit]")
                await page.wait_for_url(f"{base}/inbox/conversations/{conversation_id}")

                player = page.get_by_test_id("voice-player")
                await expect(player).to_have_count(1, timeout=15_000)
                assert await player.evaluate("a => a.tagName") == "AUDIO"
                assert await player.get_attribute("controls") is not None
                assert await player.get_attribute("src") == voice_src
                # The browser loads the note through the session cookie and can play it.
                await page.wait_for_function(
                    "() => { const a = document.querySelector('[data-testid=voice-player]');"
                    " return a.readyState >= 1 && a.duration > 2; }", timeout=15_000)
                status, content_type = await page.evaluate(
                    "src => fetch(src).then(r => [r.status, r.headers.get('content-type')])",
                    voice_src)
                assert (status, content_type) == (200, "audio/ogg")

                # The transcript sits in the same message as the player, as plain text.
                voice_message = page.get_by_test_id("message").filter(has=player)
                transcript = voice_message.locator(".transcript")
                await expect(transcript).to_have_text(f"Transcripción: {HOSTILE}")
                assert await page.evaluate("window.__xss") is None
                assert await page.locator("#messages b").count() == 0

                # The photo is shown as a picture, the document as a download link.
                photo = page.get_by_test_id("image")
                await expect(photo).to_have_count(1)
                assert await photo.get_attribute("src") == (
                    f"/api/v1/media/messages/{photo_id}/content")
                await page.wait_for_function(
                    "() => document.querySelector('[data-testid=image]').naturalWidth === 64")
                assert await page.locator("#messages img").count() == 1  # no injected image
                document = page.get_by_test_id("document")
                await expect(document).to_have_text(f"Descargar: {DOC_NAME}")
                assert await document.get_attribute("download") == DOC_NAME
                href = await document.get_attribute("href")
                assert href == f"/api/v1/media/messages/{doc_id}/content"
                status, content_type = await page.evaluate(
                    "src => fetch(src).then(r => [r.status, r.headers.get('content-type')])",
                    href)
                assert (status, content_type) == (200, "application/pdf")
                assert await page.evaluate("window.__xss") is None

                # Ana answers with a voice note recorded as WAV: it leaves as OGG/Opus.
                await page.set_input_files("#voice-file", str(agent_wav))
                await page.get_by_test_id("send").click()  # the composer sends the chosen file
                await expect(player).to_have_count(2, timeout=20_000)
                async with media_runtime.sessions() as session:
                    sent = (await session.execute(
                        select(Message).where(Message.direction == "out",
                                              Message.kind == "voice"))).scalar_one()
                assert sent.author == "agent" and sent.status == "sent"
                assert sent.media is not None and sent.media["mime_type"] == "audio/ogg"

                # Another browser, not signed in: the same source is refused.
                anonymous = await (await browser.new_context()).new_page()
                await anonymous.goto(f"{base}/login")
                status = await anonymous.evaluate(
                    "src => fetch(src).then(r => r.status)", voice_src)
                assert status == 401
            finally:
                await browser.close()
