"""``atiende backup``: back up and restore the business's data (see bot/backup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Back up and restore the business's data.", no_args_is_help=True)


def _targets() -> tuple[str, Path | None]:
    from bot.infra.embedded import EmbeddedPostgres
    from bot.logs import configure_logging
    from bot.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    database_url = settings.database_url
    if not database_url:
        # the embedded server of `make run`: attached to, or started on its data
        database_url = EmbeddedPostgres(settings.data_dir.resolve() / "pgdata").start()
    media = settings.media
    media_root = None
    if media.backend == "local":
        media_root = (media.root or settings.data_dir / "media").resolve()
    return database_url, media_root


@app.command("create")
def create(file: Annotated[Path, typer.Argument(help="the .tar.gz to write")]) -> None:
    """Write the knowledge base, settings, conversations and media to FILE."""
    from bot.infra.backup import BackupError, create_backup

    database_url, media_root = _targets()
    try:
        summary = create_backup(database_url, file, media_root=media_root)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"backup written: {summary.line()}")


@app.command("restore")
def restore(
    file: Annotated[Path, typer.Argument(help="a file written by `atiende backup create`")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="disconnect a server or worker still connected")
    ] = False,
) -> None:
    """Replace the current data with FILE (stop the server and workers first)."""
    from bot.infra.backup import BackupError, read_manifest, restore_backup

    if not file.exists():
        typer.echo(f"error: {file}: no such file", err=True)
        raise typer.Exit(1)
    try:
        manifest = read_manifest(file)
        if not yes:
            typer.confirm(
                f"Replace ALL current data with the backup of {manifest['created_at']}?",
                abort=True,
            )
        database_url, media_root = _targets()
        summary = restore_backup(database_url, file, media_root=media_root, force=force)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"restored: {summary.line()}")
