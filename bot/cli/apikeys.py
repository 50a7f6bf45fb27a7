"""``atiende apikeys``: long-lived keys for integrations (shown once, stored hashed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from handoff.apikeys import ApiKeyInfo, ApiKeys, CreatedKey
from handoff.roles import Role

if TYPE_CHECKING:
    from bot.wiring.core import Core

T = TypeVar("T")

app = typer.Typer(help="API keys for other programs (bearer tokens that act with a role).",
                  no_args_is_help=True)


def _run(work: Callable[[Core], Awaitable[T]]) -> T:
    """Run ``work(core)`` against the configured (or embedded) database, migrated."""
    from bot.cli.common import settings_for_cli
    from bot.db import migrate
    from bot.infra.backing import backing_services
    from bot.wiring.core import core_for

    settings = settings_for_cli()
    backing = backing_services(settings)
    migrate(backing.database_url)

    async def main() -> T:
        async with core_for(settings, backing) as core:
            return await work(core)

    return asyncio.run(main())


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="who uses it, e.g. 'crm-sync'")],
    role: Annotated[Role, typer.Option("--role")],
) -> None:
    """Create a key and print it once (it cannot be shown again)."""
    from handoff.audit import Actor, AuditLog
    from handoff.auth import InvalidUser, UserExists

    async def work(core: Core) -> CreatedKey:
        created = await ApiKeys(core.sessions, clock=core.clock).create(
            name=name, role=role, created_by="cli")
        await AuditLog(core.sessions).record(
            Actor.cli(), "apikeys.create", f"apikey:{created.info.id}",
            {"name": created.info.name, "role": created.info.role})
        return created

    try:
        created = _run(work)
    except (InvalidUser, UserExists) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(created.key)
    typer.echo(f"created {created.info.role} key {created.info.name!r} ({created.info.id}); "
               "store it now: it is not shown again", err=True)


@app.command("list")
def list_keys() -> None:
    """Every key: name, role, prefix, created, last use, revoked."""
    keys = _run(lambda core: ApiKeys(core.sessions, clock=core.clock).list())
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        used = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never"
        typer.echo(f"{k.id}  {k.name:<20} {k.role:<10} {k.prefix}…  last use {used}  {state}")


@app.command("revoke")
def revoke(key: Annotated[str, typer.Argument(help="the key's id or name")]) -> None:
    """Revoke a key: it stops working at once."""
    from handoff.audit import Actor, AuditLog

    async def work(core: Core) -> ApiKeyInfo | None:
        info = await ApiKeys(core.sessions, clock=core.clock).revoke(key)
        if info is not None:
            await AuditLog(core.sessions).record(Actor.cli(), "apikeys.revoke",
                                                 f"apikey:{info.id}", {"name": info.name})
        return info

    info = _run(work)
    if info is None:
        typer.echo(f"error: no active API key {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {info.name} ({info.id})")
