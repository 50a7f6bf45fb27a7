"""The transcriber port: a decoded voice note in, its text out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

SAMPLE_RATE = 16_000


@dataclass(frozen=True, slots=True)
class AudioClip:
    """A voice note as received (``data``) and decoded (``samples``, 16 kHz mono float32)."""

    data: bytes
    mime_type: str
    samples: np.ndarray

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    language: str
    duration: float  # seconds of audio
    backend: str
    elapsed: float  # seconds spent transcribing


class Transcriber(Protocol):
    """Turns speech into text. Raises TranscriberUnavailable when the backend cannot run."""

    name: str

    async def transcribe(self, clip: AudioClip, *, language: str) -> Transcript: ...

    async def warm(self) -> None:
        """Load what the first call would otherwise load (models, provider client)."""
        ...
