"""``atiende llm …``: benchmark and check the LLM chain from the command line."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

app = typer.Typer(help="The LLM chain: benchmark and check the configuration.",
                  no_args_is_help=True)


@app.command("bench")
def bench(calls: Annotated[int, typer.Option("--calls", "-n")] = 300) -> None:
    """Chain overhead (p95 <= 20 ms) and fallback-after-500 cost (<= 150 ms), see BENCHMARKS.md."""
    from bot.bench.llm import run_llm_bench

    typer.echo(asyncio.run(run_llm_bench(calls)))


@app.command("check")
def check() -> None:
    """Validate ATIENDE_LLM_CONFIG and print the order of models per use (no requests sent)."""
    from bot.errors import LLMConfigError
    from bot.llm.config import load_chain_file
    from bot.settings import load_settings

    path = load_settings().llm_config
    if path is None:
        typer.echo("ATIENDE_LLM_CONFIG is not set: the bot answers from the knowledge base only")
        raise typer.Exit(0)
    try:
        config = load_chain_file(path)
    except LLMConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for purpose in ("answer", "intent", "summary"):
        typer.echo(f"{purpose:8} {' -> '.join(config.chain_for(config.model_for(purpose)))}")
    typer.echo(f"budget   {config.atiende.budget_seconds:g} s per customer message")
