"""A provider's transcription API (Groq, OpenAI, any OpenAI-compatible server).

litellm itself is imported only by ``bot/llm/adapter.py``; its errors arrive here as
``LLMUnavailable`` and become ``TranscriberUnavailable``, so the caller can fall back to
local Whisper.
"""

from __future__ import annotations

import time

from bot.errors import LLMError, TranscriberUnavailable
from bot.media.sniff import extension as extension_for
from bot.speech.base import AudioClip, Transcript


class LiteLLMTranscriber:
    """``litellm.atranscription`` with an explicit language, timeout and no hidden retries."""

    name = "provider"

    def __init__(
        self, model: str, *, api_base: str | None, api_key: str | None, timeout: float
    ) -> None:
        self._model = model
        self._api_base = api_base
        self._api_key = api_key
        self._timeout = timeout

    async def warm(self) -> None:
        import bot.llm.adapter  # noqa: F401  (importing litellm takes seconds; pay it at start)

    async def transcribe(self, clip: AudioClip, *, language: str) -> Transcript:
        from bot.llm.adapter import transcribe_audio

        started = time.perf_counter()
        try:
            text = await transcribe_audio(
                model=self._model,
                filename=f"voice{extension_for(clip.mime_type)}",
                data=clip.data,
                mime_type=clip.mime_type,
                language=language,
                api_base=self._api_base,
                api_key=self._api_key,
                timeout=self._timeout,
            )
        except LLMError as exc:
            raise TranscriberUnavailable(str(exc), backend=self.name) from exc
        return Transcript(
            text, language, clip.duration, f"provider:{self._model}", time.perf_counter() - started
        )
