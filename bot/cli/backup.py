"""``atiende backup``: back up and restore the business's data (see bot/backup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
    erasure_log: Annotated[Path | None, typer.Option(
        "--erasure-log",
        help="also re-apply this log (`atiende contacts erasures --out`), e.g. when the "
             "database being replaced is lost")] = None,
) -> None:
    """Replace the current data with FILE (stop the server and workers first); then
    re-apply every customer erasure the replaced database (and --erasure-log) knew."""
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
        carried = _carried_log(database_url, erasure_log)
        summary = restore_backup(database_url, file, media_root=media_root, force=force)
    except (BackupError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"restored: {summary.line()}")
    if carried is not None:
        _reapply(database_url, *carried)


def _carried_log(database_url: str, extra: Path | None) -> tuple[Any, Path] | None:
    """The erasure log of the database about to be replaced (plus ``extra``), also
    saved to a file until it is re-applied (a crash in between loses nothing)."""
    import asyncio
    from datetime import UTC, datetime

    from bot.privacy.reapply import load_log, read_log, write_log
    from bot.settings import load_settings

    log = asyncio.run(_read(database_url, read_log))
    if extra is not None:
        if not extra.is_file():
            raise ValueError(f"{extra}: no such file")
        log = load_log(extra).merge(log)
    if not log:
        return None
    saved = load_settings().data_dir.resolve() / (
        f"erasure-log-{datetime.now(UTC):%Y%m%dT%H%M%S}.jsonl")
    write_log(log, saved)
    return log, saved


async def _read(database_url: str, read_log: Any) -> Any:
    from bot.db import create_engine, session_factory

    engine = create_engine(database_url, pool_size=1)
    try:
        return await read_log(session_factory(engine))
    finally:
        await engine.dispose()


def _reapply(database_url: str, log: Any, saved: Path, *, keep: bool = False) -> None:
    import asyncio

    from bot.db import create_engine, migrate, session_factory
    from bot.metrics import Metrics
    from bot.privacy import PrivacyMetrics
    from bot.privacy.reapply import reapply
    from bot.settings import load_settings
    from bot.wiring.media import media_store

    async def main() -> str:
        engine = create_engine(database_url, pool_size=2)
        try:
            sessions = session_factory(engine)
            media = await media_store(load_settings())
            done = await reapply(log, sessions=sessions, media=media,
                                 metrics=PrivacyMetrics(Metrics().registry))
            return done.line()
        finally:
            await engine.dispose()

    try:
        migrate(database_url)  # a backup from before the erasure log: its tables first
        typer.echo(asyncio.run(main()))
    except Exception as exc:
        typer.echo(f"error: the erasure log was not re-applied ({exc}); it is saved in "
                   f"{saved}: run `atiende backup reapply {saved}`", err=True)
        raise typer.Exit(1) from exc
    if not keep:
        saved.unlink(missing_ok=True)


@app.command("reapply")
def reapply_command(
    log: Annotated[Path, typer.Argument(help="an erasure log (JSON lines)")],
) -> None:
    """Re-apply an erasure log to the current data (what a restore does itself)."""
    from bot.privacy.reapply import load_log

    database_url, _ = _targets()
    try:
        loaded = load_log(log)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    _reapply(database_url, loaded, log, keep=True)
