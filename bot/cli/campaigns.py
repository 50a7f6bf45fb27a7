"""``atiende campaigns …``: look at campaigns from the command line, and the benchmark."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

app = typer.Typer(help="Outbound campaigns (create and launch them from the admin API/pages).")


@app.command("bench")
def bench(
    contacts: Annotated[int, typer.Option("--contacts", "-n")] = 1000,
) -> None:
    """Simulate a campaign with the default safe pacing on a fake clock; print the figures."""
    from bot.bench.campaigns import run_campaign_bench
    from bot.settings import load_settings

    typer.echo(asyncio.run(run_campaign_bench(load_settings(), contacts=contacts)))


@app.command("list")
def list_campaigns() -> None:
    """Every campaign with its status and progress (reads the configured database)."""
    from bot.settings import load_settings
    from bot.wiring.campaigns import campaign_service
    from bot.wiring.core import core_for

    settings = load_settings()

    async def main() -> None:
        async with core_for(settings) as core:
            for c in await campaign_service(core, core.job_queue()).campaigns():
                p = c.progress
                typer.echo(
                    f"{c.id}  {c.status:<9} {c.name}  total={p.total} waiting={p.waiting} "
                    f"sent={p.sent} delivered={p.delivered} read={p.read} "
                    f"replied={p.replied} failed={p.failed} skipped={p.skipped}"
                )

    asyncio.run(main())
