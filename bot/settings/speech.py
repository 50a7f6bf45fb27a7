"""Speech settings (``ATIENDE_SPEECH__*``): which transcriber, which language, what limits."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class SpeechSettings(BaseModel):
    """Local Whisper by default; a provider (litellm) first when ``provider_model`` is set."""

    model_config = ConfigDict(frozen=True)

    backend: Literal["faster-whisper", "openai-whisper"] = "faster-whisper"
    language: str = Field(default="es", min_length=2, max_length=8)
    models_dir: Path | None = Field(default=None, description="default <venv>/share/atiende/models")
    compute_type: str = Field(
        default="auto",
        description="auto: int8 where the CPU has VNNI/AMX, else float32; or any CTranslate2 type",
    )
    threads: int = Field(default=2, ge=1, le=64)
    beam_size: int = Field(default=5, ge=1, le=10)
    encoder_window: Literal["full", "trimmed"] = Field(
        default="full",
        description="trimmed: encode only the note (+1 s), not Whisper's 30 s window: ~1.6x "
        "faster, but now and then drops or repeats a sentence (BENCHMARKS.md, Speech)",
    )
    max_duration_seconds: float = Field(default=600.0, gt=0)
    warm_at_start: bool = True
    provider_model: str | None = Field(
        default=None, description="litellm model, e.g. groq/whisper-large-v3 or openai/whisper-1"
    )
    provider_api_base: str | None = None
    provider_api_key: SecretStr | None = None
    provider_timeout_seconds: float = Field(default=30.0, gt=0)
