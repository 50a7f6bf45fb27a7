"""Real transcription of synthesized Spanish voice notes, with both local backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import AudioUnusable
from bot.speech.audio import decode
from bot.speech.base import Transcriber
from bot.speech.faster import FasterWhisperTranscriber
from bot.speech.models import read_ctranslate2
from bot.speech.service import FASTER_WHISPER_DIR, SpeechService


def _words(text: str) -> str:
    return text.lower().replace(",", " ").replace(".", " ").replace("¿", " ").replace("?", " ")


async def test_faster_whisper_transcribes_spanish(
    faster: FasterWhisperTranscriber, clips: dict[str, Path]
) -> None:
    clip = decode(clips["quote"].read_bytes(), mime_type="audio/ogg", max_seconds=600)
    assert 3 < clip.duration < 15
    result = await faster.transcribe(clip, language="es")
    words = _words(result.text)
    for key in ("cuánto", "cuesta", "seguro", "auto"):
        assert key in words, result.text
    assert result.backend == "faster-whisper" and result.language == "es"


async def test_openai_whisper_reference_transcribes_the_same_weights(
    reference: Transcriber, clips: dict[str, Path]
) -> None:
    clip = decode(clips["quote"].read_bytes(), mime_type="audio/ogg", max_seconds=600)
    result = await reference.transcribe(clip, language="es")
    words = _words(result.text)
    for key in ("cuesta", "seguro", "auto"):
        assert key in words, result.text
    assert result.backend == "openai-whisper"


def test_converted_checkpoint_holds_every_weight(models_dir: Path, openai_checkpoint: Path) -> None:
    torch = pytest.importorskip("torch")
    checkpoint = torch.load(openai_checkpoint, map_location="cpu")
    state = checkpoint["model_state_dict"]
    assert checkpoint["dims"]["n_audio_layer"] == 6 and checkpoint["dims"]["n_text_head"] == 8
    source = dict(read_ctranslate2(models_dir / FASTER_WHISPER_DIR / "model.bin"))
    fused = source["encoder/layer_0/self_attention/linear_0/weight"]
    assert (state["encoder.blocks.0.attn.key.weight"].numpy() == fused[512:1024]).all()
    assert "encoder.blocks.0.attn.key.bias" not in state  # Whisper's key projection has no bias
    assert state["decoder.token_embedding.weight"].shape == (51865, 512)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", "empty"),
        (b"OggS" + b"\x00" * 200 + b"not really an ogg stream" * 50, "corrupt"),
        (b"%PDF-1.4 definitely not audio", "corrupt"),
    ],
    ids=["empty", "corrupt-ogg", "pdf"],
)
def test_bad_audio_is_unusable(payload: bytes, code: str) -> None:
    with pytest.raises(AudioUnusable) as caught:
        decode(payload, mime_type="audio/ogg", max_seconds=600)
    assert caught.value.code == code


async def test_silence_is_empty_and_long_audio_too_long(
    faster: FasterWhisperTranscriber, tmp_path: Path, clips: dict[str, Path]
) -> None:
    import subprocess

    silent = tmp_path / "silence.ogg"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono",
         "-t", "4", "-c:a", "libopus", str(silent)], check=True,
    )
    service = SpeechService(local=faster, language="es", max_duration_seconds=5)
    with pytest.raises(AudioUnusable) as caught:
        await service.transcribe(silent.read_bytes(), mime_type="audio/ogg")
    assert caught.value.code == "empty"
    with pytest.raises(AudioUnusable) as caught:  # the quote clip lasts ~6 s, limit 5 s
        await service.transcribe(clips["quote"].read_bytes(), mime_type="audio/ogg")
    assert caught.value.code == "too_long"
