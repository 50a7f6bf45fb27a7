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
    from bot.infra.backing import backing_services
    from bot.settings import load_settings
    from bot.wiring.runtime import Runtime

    settings = load_settings()
    backing = backing_services(settings)

    async def main() -> None:
        runtime = await Runtime.create(
            settings, database_url=backing.database_url, redis_url=backing.redis_url
        )
        try:
            for c in await runtime.campaigns.campaigns():
                p = c.progress
                typer.echo(
                    f"{c.id}  {c.status:<9} {c.name}  total={p.total} waiting={p.waiting} "
                    f"sent={p.sent} delivered={p.delivered} read={p.read} "
                    f"replied={p.replied} failed={p.failed} skipped={p.skipped}"
                )
        finally:
            await runtime.close()

    asyncio.run(main())
