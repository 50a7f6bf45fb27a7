"""``atiende users``: staff accounts from the command line."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from handoff.roles import Role

app = typer.Typer(help="Staff users (admin, supervisor, agent).", no_args_is_help=True)


@app.command("create")
def create(
    email: Annotated[str, typer.Option("--email")],
    name: Annotated[str, typer.Option("--name")],
    role: Annotated[Role, typer.Option("--role")],
    password: Annotated[str, typer.Option("--password", prompt=True, hide_input=True)],
) -> None:
    """Create a user who can log in to the inbox and the admin pages."""
    from bot.db import migrate
    from bot.infra.backing import backing_services
    from bot.logs import configure_logging
    from bot.settings import load_settings
    from bot.wiring.core import core_for
    from bot.wiring.staff import auth_service
    from handoff.audit import Actor, AuditLog
    from handoff.auth import InvalidUser, UserExists

    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    backing = backing_services(settings)
    migrate(backing.database_url)

    async def main() -> str:
        async with core_for(settings, backing) as core:
            user = await auth_service(core).create_user(
                email=email, name=name, role=role, password=password
            )
            await AuditLog(core.sessions).record(
                Actor.cli(), "users.create", f"user:{user.id}",
                {"email": user.email, "role": user.role.value},
            )
        return f"created {user.role.value} {user.email} ({user.id})"

    try:
        typer.echo(asyncio.run(main()))
    except (UserExists, InvalidUser) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
