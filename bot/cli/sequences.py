"""``atiende sequences …``: follow-up sequences from the command line, and the benchmark."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

app = typer.Typer(help="Follow-up sequences (define and enroll from the admin API/pages).")


@app.command("bench")
def bench(
    contacts: Annotated[int, typer.Option("--contacts", "-n")] = 100_000,
    ticks: Annotated[int, typer.Option("--ticks", help="steady-state ticks (10 s apart)")] = 360,
    burst: Annotated[int, typer.Option("--burst", help="steps due at once")] = 20_000,
    kill_contacts: Annotated[int, typer.Option("--kill-contacts")] = 3_000,
    outage_contacts: Annotated[int, typer.Option("--outage-contacts")] = 1_000,
) -> None:
    """Tick p95 at N enrolled contacts, a worker killed mid-tick, false positives of the
    blocked-contact detector in an outage (own throwaway PostgreSQL and Redis)."""
    from bot.bench.sequences import run_sequence_bench
    from bot.settings import load_settings

    typer.echo(asyncio.run(run_sequence_bench(
        load_settings(), contacts=contacts, ticks=ticks, burst=burst,
        kill_contacts=kill_contacts, outage_contacts=outage_contacts)))


@app.command("list")
def list_sequences() -> None:
    """Every sequence with its enrollments per state (reads the configured database)."""
    from bot.sequences import SequenceService
    from bot.settings import load_settings
    from bot.wiring.core import core_for

    settings = load_settings()

    async def main() -> None:
        async with core_for(settings) as core:
            service = SequenceService(sessions=core.sessions, clock=core.clock)
            for s in await service.sequences():
                counts = " ".join(f"{k}={v}" for k, v in s.enrollments.items())
                typer.echo(f"{s.id}  {s.name}  steps={len(s.steps)}  {counts}")

    asyncio.run(main())
