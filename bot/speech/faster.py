"""faster-whisper (CTranslate2) backend, the default: the only faster_whisper importer."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from bot.errors import TranscriberUnavailable
from bot.speech.base import AudioClip, Transcript


class FasterWhisperTranscriber:
    """Whisper on CPU, int8 weights; the model loads once per process (first use or warm())."""

    name = "faster-whisper"

    def __init__(
        self, model_dir: Path, *, compute_type: str = "int8", threads: int = 2, beam_size: int = 5
    ) -> None:
        self._model_dir = model_dir
        self._compute_type = compute_type
        self._threads = threads
        self._beam_size = beam_size
        self._model: Any = None
        self._load_lock = threading.Lock()
        # Two cores: one transcription at a time is faster than two fighting for them.
        self._busy = asyncio.Lock()

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                if not (self._model_dir / "model.bin").is_file():
                    raise TranscriberUnavailable(
                        f"no Whisper model in {self._model_dir}: run `atiende models install`",
                        backend=self.name,
                    )
                from faster_whisper import WhisperModel

                self._model = WhisperModel(
                    str(self._model_dir), device="cpu", compute_type=self._compute_type,
                    cpu_threads=self._threads, num_workers=1,
                )
            return self._model

    async def warm(self) -> None:
        await asyncio.to_thread(self._load)

    def _run(self, clip: AudioClip, language: str) -> str:
        model = self._load()
        segments, _info = model.transcribe(
            clip.samples, language=language, beam_size=self._beam_size,
            condition_on_previous_text=False, vad_filter=False,
        )
        return " ".join(segment.text.strip() for segment in segments).strip()

    async def transcribe(self, clip: AudioClip, *, language: str) -> Transcript:
        async with self._busy:
            started = time.perf_counter()
            text = await asyncio.to_thread(self._run, clip, language)
        return Transcript(text, language, clip.duration, self.name, time.perf_counter() - started)
