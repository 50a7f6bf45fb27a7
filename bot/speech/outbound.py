"""Outbound voice notes: any recording an agent uploads becomes OGG/Opus, as WhatsApp requires."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from typing import IO

from bot.errors import AudioUnusable, TranscriberUnavailable

OGG_OPUS = "audio/ogg; codecs=opus"


async def to_ogg_opus(data: bytes, *, bitrate: str = "32k", timeout: float = 120.0) -> bytes:
    """Convert audio (wav, mp3, m4a, webm…) to mono 48 kHz OGG/Opus with ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise TranscriberUnavailable("ffmpeg is not installed", backend="ffmpeg")
    if not data:
        raise AudioUnusable("the recording is empty", code="empty")
    # From a file, not a pipe: MP4/M4A (what phones record) keeps its index at the end,
    # which ffmpeg can only reach by seeking.
    with tempfile.NamedTemporaryFile(prefix="atiende-voice-", suffix=".in") as source:
        await asyncio.to_thread(_write, source, data)
        process = await asyncio.create_subprocess_exec(
            ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-i", source.name,
            "-vn", "-map_metadata", "-1", "-ac", "1", "-ar", "48000",
            "-c:a", "libopus", "-b:a", bitrate, "-application", "voip", "-f", "ogg", "pipe:1",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AudioUnusable(
                "converting the recording took too long", code="too_long"
            ) from None
    if process.returncode != 0 or not out:
        reason = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no audio"]
        raise AudioUnusable(f"cannot convert the recording: {reason[0]}", code="corrupt")
    return out


def _write(handle: IO[bytes], data: bytes) -> None:
    handle.write(data)
    handle.flush()
