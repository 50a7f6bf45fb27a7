"""Agents' voice notes leave as OGG/Opus, whatever they recorded in."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.errors import AudioUnusable
from bot.media.sniff import sniff
from bot.speech import to_ogg_opus
from bot.speech.audio import decode


@pytest.mark.parametrize("source_format", ["wav", "mp3", "m4a"])
async def test_recordings_become_ogg_opus(tmp_path: Path, source_format: str) -> None:
    source = tmp_path / f"agent.{source_format}"
    subprocess.run(
        ["espeak-ng", "-v", "es-419", "-w", str(tmp_path / "speech.wav"),
         "Hola, le llamo de la aseguradora para confirmar su cita."], check=True,
    )
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(tmp_path / "speech.wav"), "-ar", "44100",
         "-ac", "2", str(source)], check=True,
    )
    converted = await to_ogg_opus(source.read_bytes())
    assert converted.startswith(b"OggS") and b"OpusHead" in converted[:200]
    found = sniff(converted)
    assert found is not None and found.mime_type == "audio/ogg"
    original = decode(source.read_bytes(), mime_type="audio/wav", max_seconds=60)
    clip = decode(converted, mime_type="audio/ogg", max_seconds=60)
    assert abs(clip.duration - original.duration) < 0.2  # same speech, mono, re-encoded


@pytest.mark.parametrize("payload", [b"", b"esto no es audio" * 100], ids=["empty", "garbage"])
async def test_bad_recordings_are_refused(payload: bytes) -> None:
    with pytest.raises(AudioUnusable):
        await to_ogg_opus(payload)
