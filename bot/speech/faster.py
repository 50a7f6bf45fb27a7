"""faster-whisper (CTranslate2) backend, the default: the only faster_whisper importer."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any, Literal

from bot.errors import TranscriberUnavailable
from bot.speech.base import AudioClip, Transcript

# CPU flags with fast int8 dot products (VNNI, AMX). Without them CTranslate2's int8 GEMM
# (oneDNN) runs ~2x slower than float32 on AVX2: measured in BENCHMARKS.md, Speech.
_INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
WINDOW_SECONDS = 30.0  # Whisper's input window
FRAMES_PER_SECOND = 100  # log-mel frames per second of audio
# Trimmed window: the note plus this much padding (the end of a word must not be cut off).
TRIM_MARGIN_SECONDS = 1.0


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of ``/proc/cpuinfo`` text (empty if there is no flags line)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def choose_compute_type(setting: str, cpuinfo: str | None = None) -> str:
    """``auto`` → int8 where the CPU has VNNI/AMX, else float32; any other value is kept."""
    if setting != "auto":
        return setting
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    return "int8" if cpu_flags(cpuinfo) & _INT8_FLAGS else "float32"


def encoder_frames(duration: float, window: Literal["full", "trimmed"]) -> int | None:
    """Mel frames the encoder sees for a note: None = the full 30 s window.

    Only a note that fits one window is trimmed (note + margin); longer notes keep
    Whisper's full windows.
    """
    if window == "full" or duration + TRIM_MARGIN_SECONDS >= WINDOW_SECONDS:
        return None
    return int((duration + TRIM_MARGIN_SECONDS) * FRAMES_PER_SECOND)


def _model_class() -> Any:
    from faster_whisper import WhisperModel

    class WindowedWhisperModel(WhisperModel):  # type: ignore[misc]
        """WhisperModel whose encoder input can be cut to the note's length (CT2 allows it)."""

        frames: int | None = None

        def encode(self, features: Any) -> Any:
            if self.frames is not None:
                features = features[..., : self.frames]
            return super().encode(features)

    return WindowedWhisperModel


class FasterWhisperTranscriber:
    """Whisper on CPU; the model loads once per process (first use or warm()).

    ``compute_type="auto"`` picks int8 only where the CPU computes it fast (VNNI/AMX),
    else float32. A note that fits one 30 s window is decoded without timestamps (we only
    keep the text); ``encoder_window="trimmed"`` also cuts the encoder input to the note.
    """

    name = "faster-whisper"

    def __init__(
        self, model_dir: Path, *, compute_type: str = "auto", threads: int = 2,
        beam_size: int = 5, encoder_window: Literal["full", "trimmed"] = "full",
    ) -> None:
        self._model_dir = model_dir
        self.compute_type = choose_compute_type(compute_type)
        self._threads = threads
        self._beam_size = beam_size
        self._window = encoder_window
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()  # the trimmed length is per call, on a shared model
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
                self._model = _model_class()(
                    str(self._model_dir), device="cpu", compute_type=self.compute_type,
                    cpu_threads=self._threads, num_workers=1,
                )
            return self._model

    async def warm(self) -> None:
        await asyncio.to_thread(self._load)

    def _run(self, clip: AudioClip, language: str) -> str:
        model = self._load()
        one_window = clip.duration <= WINDOW_SECONDS
        with self._run_lock:
            model.frames = encoder_frames(clip.duration, self._window)
            try:
                segments, _info = model.transcribe(
                    clip.samples, language=language, beam_size=self._beam_size,
                    condition_on_previous_text=False, vad_filter=False,
                    # Timestamps only steer where the next window starts: useless in one window.
                    without_timestamps=one_window,
                )
                return " ".join(segment.text.strip() for segment in segments).strip()
            finally:
                model.frames = None

    async def transcribe(self, clip: AudioClip, *, language: str) -> Transcript:
        async with self._busy:
            started = time.perf_counter()
            text = await asyncio.to_thread(self._run, clip, language)
        return Transcript(text, language, clip.duration, self.name, time.perf_counter() - started)
