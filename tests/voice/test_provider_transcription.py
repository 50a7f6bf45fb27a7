"""The provider backend (litellm ``atranscription``) against a local OpenAI-compatible server."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import TranscriberUnavailable
from bot.settings.speech import SpeechSettings
from bot.speech.audio import decode
from bot.speech.faster import FasterWhisperTranscriber
from bot.speech.litellm_transcriber import LiteLLMTranscriber
from bot.speech.service import SpeechService, build_speech
from tests.voice.conftest import PROVIDER_TEXT, ScriptedProvider


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
