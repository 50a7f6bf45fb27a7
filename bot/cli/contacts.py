"""``atiende contacts``: export or erase a customer's data, the erasure log, retention.

Works against the configured database (or the embedded one of ``make run``) and the
configured media store, like the server does. Every action is audited as ``cli``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.common import settings_for_cli

if TYPE_CHECKING:
    from bot.privacy import CustomerData, CustomerRef
    from bot.wiring.core import Core

app = typer.Typer(help="Customers' data: export, erase, erasure log, retention.",
                  no_args_is_help=True)


@asynccontextmanager
async def _privacy() -> AsyncIterator[tuple[CustomerData, Core]]:
    from bot.infra.backing import Backing
    from bot.infra.embedded import EmbeddedPostgres, EmbeddedRedis
    from bot.wiring.core import core_for
    from bot.wiring.privacy import privacy_for

    settings = settings_for_cli()
    data_dir = settings.data_dir.resolve()
    # the embedded Redis of `make run` is used when it runs, never started for this: if
    # it does not answer, an erasure leaves the memory to the server's periodic job
    backing = Backing(
        settings.database_url or EmbeddedPostgres(data_dir / "pgdata").start(),
        settings.redis_url or EmbeddedRedis(data_dir / "redis").url,
    )
    async with core_for(settings, backing) as core:
        yield await privacy_for(core), core


def _refs(values: list[str], region: str) -> list[CustomerRef]:
    from bot.errors import InvalidPhoneNumber
    from bot.privacy import CustomerRef

    refs, bad = [], []
    for value in values:
        try:
            refs.append(CustomerRef.parse(value, region=region))
        except InvalidPhoneNumber as exc:
            bad.append(f"{value}: {exc.reason}")
    if bad:
        for line in bad:
            typer.echo(f"error: not a phone number or contact id: {line}", err=True)
        raise typer.Exit(2)
    return refs


@app.command("export")
def export(
    phone: Annotated[str, typer.Argument(help="number, sim:/lid: key or contact id")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="write here; a .zip gets the JSON plus every media file")] = None,
) -> None:
    """Everything held about one customer: JSON on stdout, or a file (.zip: with media)."""
    from bot.errors import NotFound
    from handoff.audit import Actor, AuditLog

    async def main() -> int:
        async with _privacy() as (privacy, core):
            ref = _refs([phone], core.settings.default_region)[0]
            try:
                if out is not None and out.suffix.lower() == ".zip":
                    summary = await privacy.exporter.archive(ref, out)
                    contact_id, detail = summary.contact_id, (
                        f"{out}: export.json and {summary.media_files} media file(s)"
                        + (f", {summary.missing} missing from the store" if summary.missing
                           else ""))
                else:
                    document = await privacy.exporter.document(ref)
                    body = json.dumps(document, ensure_ascii=False, indent=2, default=str)
                    contact_id = document["contact"]["id"]
                    if out is None:
                        sys.stdout.write(body + "\n")
                        detail = ""
                    else:
                        out.write_text(body + "\n", encoding="utf-8")
                        detail = f"{out}: export.json"
            except NotFound as exc:
                typer.echo(f"error: {exc}", err=True)
                return 1
            await AuditLog(core.sessions).record(
                Actor.cli(), "contacts.export", f"contact:{contact_id}",
                {"format": "archive" if out and out.suffix.lower() == ".zip" else "json"})
            if detail:
                typer.echo(f"exported {detail}", err=True)
            return 0

    raise typer.Exit(asyncio.run(main()))


@app.command("erase")
def erase(
    phones: Annotated[list[str] | None, typer.Argument(help="numbers, keys or contact ids")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", "-f", help="one number (or contact id) per line")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="finish erasures whose media or memory were left to delete")] = False,
) -> None:
    """Erase customers' data (in bounded batches); or finish unfinished erasures."""
    values = list(phones or [])
    if file is not None:
        if not file.is_file():
            typer.echo(f"error: {file}: no such file", err=True)
            raise typer.Exit(2)
        values += [line.strip() for line in file.read_text().splitlines()
                   if line.strip() and not line.startswith("#")]
    if not values and not resume:
        typer.echo("error: give numbers, --file, or --resume", err=True)
        raise typer.Exit(2)
    if values and not yes:
        typer.confirm(f"Erase ALL data of {len(values)} customer(s)? This cannot be undone",
                      abort=True)
    raise typer.Exit(asyncio.run(_erase(values, resume=resume)))


async def _erase(values: list[str], *, resume: bool) -> int:
    from handoff.audit import Actor

    failed = erased = 0
    async with _privacy() as (privacy, core):
        if resume:
            done = await privacy.eraser.resume(limit=10_000)
            typer.echo(f"resumed: {done['objects']} erasure(s) finished, "
                       f"{done['settled']} settled")
        refs = _refs(values, core.settings.default_region)
        settings = privacy.settings
        if len(refs) > 1 and settings.erase_nice:
            os.nice(settings.erase_nice)  # a background job: live conversations go first
        async for outcomes in privacy.eraser.erase_many(
            refs, actor=Actor.cli(), source="cli", batch=settings.erase_batch,
            pause_seconds=settings.batch_pause_seconds, yield_ratio=settings.erase_yield,
        ):
            for outcome in outcomes:
                if outcome.erased is None:
                    failed += 1
                    typer.echo(f"{outcome.ref.label()}: {outcome.error}", err=True)
                    continue
                erased += 1
                if len(refs) <= 20:
                    typer.echo(f"{outcome.ref.label()}: " + json.dumps(outcome.erased.to_json()))
    if values:
        typer.echo(f"erased {erased} customer(s); {failed} not erased")
    return 1 if failed else 0


@app.command("erasures")
def erasures(
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="write the whole log as JSON lines (keep it with your backups)")
    ] = None,
) -> None:
    """The erasure log (who erased which contact, when; no numbers). ``--out`` writes the
    log a restore re-applies (``atiende backup restore --erasure-log FILE``)."""
    if out is not None:
        raise typer.Exit(asyncio.run(_save_log(out)))

    async def show() -> None:
        async with _privacy() as (privacy, _core):
            for e in await privacy.eraser.recent(limit=1000):
                typer.echo(f"{e['requested_at']:%Y-%m-%d %H:%M:%S}  contact:{e['contact_id']}  "
                           f"{e['actor_email'] or e['actor_kind']} ({e['source']})  {e['state']}")

    asyncio.run(show())


@app.command("retention")
def retention() -> None:
    """Apply the retention settings now (what the periodic job does), and say what went."""

    async def main() -> None:
        async with _privacy() as (privacy, _core):
            report = await privacy.maintain()
            settings = privacy.settings
            typer.echo(f"retention: media {settings.media_days} days, transcripts "
                       f"{settings.transcript_days} days, texts {settings.text_days} days")
            typer.echo(report.line())

    asyncio.run(main())


async def _save_log(out: Path) -> int:
    from bot.privacy.reapply import read_log, write_log

    async with _privacy() as (_, core):
        log = await read_log(core.sessions)
    if log is None:
        typer.echo("error: this database has no erasure log (run `atiende migrate`)", err=True)
        return 1
    write_log(log, out)
    typer.echo(f"{out}: {len(log.erasures)} erasure(s), {len(log.optouts)} kept opt-out(s)")
    return 0
