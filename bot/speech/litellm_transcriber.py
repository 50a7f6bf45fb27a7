"""A provider's transcription API (Groq, OpenAI, any OpenAI-compatible server) through litellm.

The only module of the speech package importing litellm; its errors become
``TranscriberUnavailable`` here, so the caller can fall back to local Whisper.
"""

from __future__ import annotations

import os
import time
from typing import Any

from bot.errors import TranscriberUnavailable
from bot.media.sniff import extension as extension_for
from bot.speech.base import AudioClip, Transcript


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
    import litellm

    return litellm


def _provider_errors() -> tuple[type[Exception], ...]:
    # Every litellm error derives from openai.OpenAIError (``litellm.OpenAIError`` is a
    # different class); httpx errors and timeouts can come through unwrapped.
    import httpx
    from openai import OpenAIError

    return (OpenAIError, httpx.HTTPError, TimeoutError, ConnectionError)


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
        _litellm()  # the import itself takes seconds; pay it at start

    async def transcribe(self, clip: AudioClip, *, language: str) -> Transcript:
        litellm = _litellm()
        started = time.perf_counter()
        try:
            response = await litellm.atranscription(
                model=self._model,
                file=(f"voice{extension_for(clip.mime_type)}", clip.data, clip.mime_type),
                language=language,
                api_base=self._api_base,
                api_key=self._api_key,
                timeout=self._timeout,
                max_retries=0,
            )
        except _provider_errors() as exc:
            raise TranscriberUnavailable(
                f"{self._model}: {type(exc).__name__}: {exc}"[:500], backend=self.name
            ) from exc
        text = str(getattr(response, "text", "") or "").strip()
        return Transcript(
            text, language, clip.duration, f"provider:{self._model}", time.perf_counter() - started
        )
