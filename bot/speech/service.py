"""The voice-note service: decode and check once, then provider first (if any), local Whisper."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.errors import AudioUnusable, TranscriberUnavailable
from bot.logs import get_logger
from bot.media import MediaStore
from bot.messages import MediaRef
from bot.settings.speech import SpeechSettings
from bot.speech.audio import decode
from bot.speech.base import AudioClip, Transcriber, Transcript
from bot.speech.models import default_models_dir

log = get_logger("atiende.speech")

FASTER_WHISPER_DIR = "whisper-base"
OPENAI_WHISPER_CHECKPOINT = "whisper-base-openai.pt"


class SpeechService:
    """Transcribes voice notes: ``AudioUnusable`` for bad audio, else a non-empty transcript."""

    def __init__(
        self,
        *,
        local: Transcriber,
        provider: Transcriber | None = None,
        language: str = "es",
        max_duration_seconds: float = 600.0,
    ) -> None:
        self._local = local
        self._provider = provider
        self._language = language
        self._max_seconds = max_duration_seconds

    @property
    def language(self) -> str:
        return self._language

    async def warm(self) -> None:
        await self._local.warm()
        if self._provider is not None:
            await self._provider.warm()

    async def transcribe(self, data: bytes, *, mime_type: str) -> Transcript:
        clip = await asyncio.to_thread(
            decode, data, mime_type=mime_type, max_seconds=self._max_seconds
        )
        return await self.transcribe_clip(clip)

    async def transcribe_clip(self, clip: AudioClip) -> Transcript:
        result: Transcript | None = None
        if self._provider is not None:
            try:
                result = await self._provider.transcribe(clip, language=self._language)
            except TranscriberUnavailable as exc:
                log.warning("speech.provider_failed", backend=exc.backend, error=str(exc))
        if result is None:
            result = await self._local.transcribe(clip, language=self._language)
        if not result.text.strip():
            raise AudioUnusable("no speech was recognised", code="empty")
        log.info(
            "speech.transcribed", backend=result.backend, seconds=round(result.duration, 2),
            elapsed=round(result.elapsed, 2), chars=len(result.text),
        )
        return result

    async def transcribe_media(self, store: MediaStore, media: MediaRef) -> Transcript:
        """Transcribe a stored voice note (its size was capped when it was stored)."""
        if media.key is None:
            raise AudioUnusable("the voice note could not be downloaded", code="corrupt")
        data = b"".join([chunk async for chunk in store.read(media.key)])
        return await self.transcribe(data, mime_type=media.mime_type)


def local_transcriber(settings: SpeechSettings, *, models_dir: Path | None = None) -> Transcriber:
    """The configured local backend (imports nothing heavy until first use)."""
    root = models_dir or settings.models_dir or default_models_dir()
    if settings.backend == "openai-whisper":
        from bot.speech.reference import OpenAIWhisperTranscriber

        return OpenAIWhisperTranscriber(
            root / OPENAI_WHISPER_CHECKPOINT, threads=settings.threads,
            beam_size=settings.beam_size,
        )
    from bot.speech.faster import FasterWhisperTranscriber

    return FasterWhisperTranscriber(
        root / FASTER_WHISPER_DIR, compute_type=settings.compute_type, threads=settings.threads,
        beam_size=settings.beam_size, encoder_window=settings.encoder_window,
    )


def build_speech(settings: SpeechSettings) -> SpeechService:
    provider: Transcriber | None = None
    if settings.provider_model:
        from bot.speech.litellm_transcriber import LiteLLMTranscriber

        provider = LiteLLMTranscriber(
            settings.provider_model, api_base=settings.provider_api_base,
            api_key=(
                settings.provider_api_key.get_secret_value() if settings.provider_api_key else None
            ),
            timeout=settings.provider_timeout_seconds,
        )
    return SpeechService(
        local=local_transcriber(settings), provider=provider, language=settings.language,
        max_duration_seconds=settings.max_duration_seconds,
    )
