"""Speed settings of the local Whisper: compute type per CPU, trimmed encoder window, WER."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.bench.speech import parse_backend, word_errors
from bot.settings import Settings
from bot.speech.audio import decode
from bot.speech.faster import (
    FasterWhisperTranscriber,
    choose_compute_type,
    cpu_flags,
    encoder_frames,
)
from bot.speech.service import FASTER_WHISPER_DIR, local_transcriber
from bot.speech.synth import synthesize_voice_note

EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme de pse tsc msr sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni
bugs\t\t: sysret_ss_attrs
"""
XEON_VNNI = EPYC_AVX2.replace("sha_ni", "avx512f avx512bw avx512_vnni")
ALDER_LAKE = EPYC_AVX2.replace("sha_ni", "avx_vnni")
SAPPHIRE_RAPIDS = EPYC_AVX2.replace("sha_ni", "amx_bf16 amx_tile amx_int8")


def test_auto_compute_type_is_int8_only_with_fast_int8_instructions() -> None:
    assert "avx2" in cpu_flags(EPYC_AVX2) and "avx_vnni" not in cpu_flags(EPYC_AVX2)
    assert choose_compute_type("auto", EPYC_AVX2) == "float32"
    assert choose_compute_type("auto", XEON_VNNI) == "int8"
    assert choose_compute_type("auto", ALDER_LAKE) == "int8"
    assert choose_compute_type("auto", SAPPHIRE_RAPIDS) == "int8"
    assert choose_compute_type("auto", "") == "float32"  # no /proc/cpuinfo: the safe choice
    assert choose_compute_type("int8", EPYC_AVX2) == "int8"  # an explicit setting wins
    assert choose_compute_type("float32", XEON_VNNI) == "float32"
    # "bugs" or other lines mentioning a flag name do not count, only the flags line
    assert choose_compute_type("auto", EPYC_AVX2 + "bugs\t\t: avx_vnni\n") == "float32"


def test_settings_reach_the_transcriber(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATIENDE_SPEECH__COMPUTE_TYPE", "int8")
    monkeypatch.setenv("ATIENDE_SPEECH__ENCODER_WINDOW", "trimmed")
    speech = Settings().speech
    assert speech.compute_type == "int8" and speech.encoder_window == "trimmed"
    transcriber = local_transcriber(speech)
    assert isinstance(transcriber, FasterWhisperTranscriber)
    assert transcriber.compute_type == "int8"
    monkeypatch.setenv("ATIENDE_SPEECH__ENCODER_WINDOW", "half")
    with pytest.raises(ValueError, match="encoder_window"):
        Settings()


def test_encoder_frames_trim_only_notes_that_fit_one_window() -> None:
    assert encoder_frames(10.0, "full") is None
    assert encoder_frames(10.0, "trimmed") == 1100  # note + 1 s margin, 100 frames a second
    assert encoder_frames(4.2, "trimmed") == 520
    assert encoder_frames(29.5, "trimmed") is None  # note + margin would not fit: full window
    assert encoder_frames(95.0, "trimmed") is None


def test_word_errors_ignore_case_accents_and_punctuation() -> None:
    assert word_errors("¿Qué onda? Mándenme el link, porfa.", "que onda mandenme el LINK porfa") \
        == (0, 6)
    assert word_errors("choqué saliendo del estacionamiento", "choque saliendo en el "
                       "estaciónamiento") == (2, 4)  # one substitution, one insertion
    assert word_errors("el faro roto", "") == (3, 3)


def test_bench_backend_specs() -> None:
    assert parse_backend("faster-whisper") == ("faster-whisper", {})
    assert parse_backend("faster-whisper:beam_size=2:encoder_window=trimmed") == (
        "faster-whisper", {"beam_size": "2", "encoder_window": "trimmed"}
    )
    with pytest.raises(ValueError, match="setting=value"):
        parse_backend("faster-whisper:trimmed")


def _words(text: str) -> str:
    return text.lower().replace(",", " ").replace(".", " ").replace("¿", " ").replace("?", " ")


async def test_trimmed_window_keeps_the_key_words(
    models_dir: Path, clips: dict[str, Path]
) -> None:
    # Beam 5, as configured in production: greedy decoding on a trimmed window heard
    # "el segundo auto" here (the trimmed window is less robust: BENCHMARKS.md, Speech).
    trimmed = FasterWhisperTranscriber(
        models_dir / FASTER_WHISPER_DIR, threads=2, beam_size=5, encoder_window="trimmed"
    )
    clip = decode(clips["quote"].read_bytes(), mime_type="audio/ogg", max_seconds=600)
    result = await trimmed.transcribe(clip, language="es")
    words = _words(result.text)
    for key in ("cuánto", "cuesta", "seguro", "auto"):
        assert key in words, result.text


async def test_a_note_longer_than_one_window_is_transcribed_whole(
    faster: FasterWhisperTranscriber, tmp_path: Path
) -> None:
    """Past 30 s, timestamps steer where the next window starts (and nothing is trimmed)."""
    text = (
        "Hola, buenas tardes. Le hablo porque quiero cotizar un seguro para mi carro. "
        "Es un carro compacto, lo uso para ir al trabajo todos los días y los fines de semana "
        "salimos a carretera con la familia. Mi esposa también lo maneja. Quisiera saber qué "
        "coberturas tienen, si incluye grúa y auto sustituto, y cuánto sería el pago mensual. "
        "También me interesa saber si hay descuento por pagar el año completo. Mi correo es el "
        "mismo que tienen registrado. Muchas gracias y espero su respuesta, que tengan buen día."
    )
    note = synthesize_voice_note(text, tmp_path / "long.ogg")
    clip = decode(note.read_bytes(), mime_type="audio/ogg", max_seconds=600)
    assert clip.duration > 32 and encoder_frames(clip.duration, "trimmed") is None
    result = await faster.transcribe(clip, language="es")
    words = _words(result.text)
    # words from the first window, the second, and the very end
    for key in ("carro", "trabajo", "familia", "registrado", "gracias"):
        assert key in words, result.text
