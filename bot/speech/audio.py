"""Audio decoding and checks (PyAV, the decoder faster-whisper itself uses): the only av importer.

Every local backend receives the same 16 kHz mono float32 samples, decoded once.
Corrupt, empty and over-long recordings stop here with ``AudioUnusable``.
"""

from __future__ import annotations

import io

import av
import numpy as np

from bot.errors import AudioUnusable
from bot.speech.base import SAMPLE_RATE, AudioClip

_SILENCE_RMS = 1e-4


def decode(data: bytes, *, mime_type: str, max_seconds: float) -> AudioClip:
    """Decode and check a recording; the header's duration is checked before decoding."""
    if not data:
        raise AudioUnusable("the recording is empty", code="empty")
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioUnusable("the file holds no audio", code="corrupt")
            stream = container.streams.audio[0]
            declared = _declared_seconds(container, stream)
            if declared is not None and declared > max_seconds:
                raise AudioUnusable(
                    f"the recording lasts {declared:.0f} s (limit {max_seconds:.0f} s)",
                    code="too_long",
                )
            samples = _resample(container, stream, max_seconds)
    except AudioUnusable:
        raise
    except (av.FFmpegError, ValueError, IndexError, OSError) as exc:
        raise AudioUnusable(f"the audio cannot be decoded: {exc}", code="corrupt") from exc
    if samples.size == 0:
        raise AudioUnusable("the recording is empty", code="empty")
    if float(np.sqrt(np.mean(np.square(samples)))) < _SILENCE_RMS:
        raise AudioUnusable("the recording is silent", code="empty")
    return AudioClip(data=data, mime_type=mime_type, samples=samples)


def _declared_seconds(
    container: av.container.InputContainer, stream: av.AudioStream
) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _resample(
    container: av.container.InputContainer, stream: av.AudioStream, max_seconds: float
) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    limit = int(max_seconds * SAMPLE_RATE)
    parts: list[np.ndarray] = []
    total = 0
    for frame in container.decode(stream):
        frame.pts = None
        for out in resampler.resample(frame):
            array = out.to_ndarray().reshape(-1)
            parts.append(array)
            total += array.size
        if total > limit:  # a header that lied about the length: stop decoding now
            raise AudioUnusable(
                f"the recording lasts more than {max_seconds:.0f} s", code="too_long"
            )
    for out in resampler.resample(None):
        parts.append(out.to_ndarray().reshape(-1))
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(parts).astype(np.float32) / 32768.0
