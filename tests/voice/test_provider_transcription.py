"""The provider backend (litellm ``atranscription``) against a local OpenAI-compatible server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.errors import TranscriberUnavailable
from bot.speech.audio import decode
from bot.speech.config import SpeechSettings
from bot.speech.faster import FasterWhisperTranscriber
from bot.speech.litellm_transcriber import LiteLLMTranscriber
from bot.speech.service import SpeechService, build_speech

PROVIDER_TEXT = "Quiero hablar con un asesor, por favor."


@dataclass
class ScriptedProvider:
    """An OpenAI-compatible ``/v1/audio/transcriptions`` endpoint: answers or fails on cue."""

    url: str
    fail: bool = False
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def provider() -> Iterator[ScriptedProvider]:
    state = ScriptedProvider(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(
                (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            if state.fail:
                payload, status = {"error": {"message": "overloaded"}}, 500
            else:
                payload, status = {"text": PROVIDER_TEXT}, 200
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


async def test_provider_answers_first(provider: ScriptedProvider, clips: dict[str, Path]) -> None:
    service = build_speech(SpeechSettings(
        provider_model="openai/whisper-1", provider_api_base=provider.url,
        provider_api_key="sk-test", provider_timeout_seconds=5, language="es",
    ))
    data = clips["quote"].read_bytes()
    result = await service.transcribe(data, mime_type="audio/ogg")
    assert result.text == PROVIDER_TEXT and result.backend == "provider:openai/whisper-1"
    path, headers, body = provider.requests[0]
    assert path == "/v1/audio/transcriptions"
    assert headers["authorization"] == "Bearer sk-test"
    assert b'name="language"\r\n\r\nes' in body and data in body  # language explicit, note as sent


async def test_failing_provider_falls_back_to_local_whisper(
    provider: ScriptedProvider, faster: FasterWhisperTranscriber, clips: dict[str, Path]
) -> None:
    provider.fail = True
    remote = LiteLLMTranscriber(
        "openai/whisper-1", api_base=provider.url, api_key="sk-test", timeout=5
    )
    clip = decode(clips["quote"].read_bytes(), mime_type="audio/ogg", max_seconds=600)
    with pytest.raises(TranscriberUnavailable):
        await remote.transcribe(clip, language="es")
    service = SpeechService(local=faster, provider=remote, language="es")
    result = await service.transcribe_clip(clip)
    assert result.backend == "faster-whisper" and "seguro" in result.text.lower()
    assert len(provider.requests) == 2  # tried once each time, no hidden retries


async def test_unreachable_provider_falls_back_too(
    faster: FasterWhisperTranscriber, clips: dict[str, Path]
) -> None:
    remote = LiteLLMTranscriber(
        "openai/whisper-1", api_base="http://127.0.0.1:9/v1", api_key="sk-test", timeout=2
    )
    service = SpeechService(local=faster, provider=remote, language="es")
    result = await service.transcribe(clips["quote"].read_bytes(), mime_type="audio/ogg")
    assert result.backend == "faster-whisper"
