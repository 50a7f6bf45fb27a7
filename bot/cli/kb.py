"""``atiende kb …`` and ``atiende eval``: knowledge-base commands."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from bot.settings import Settings
from handoff.audit import Actor, AuditLog
from knowledge.errors import EmbeddingError
from knowledge.intents import IntentExamples
from knowledge.retrieval import Retriever
from knowledge.store import KnowledgeStore

kb_app = typer.Typer(help="Knowledge base: import articles and catalogs, re-embed.")

IMPORT_SUFFIXES = (".md", ".markdown", ".csv")


def database_url(settings: Settings) -> str:
    """The configured database, or the embedded server (attached to when already running,
    and migrated: a fresh machine's first ``atiende eval`` or ``kb import`` just works;
    a configured database is migrated by its own step, ``atiende migrate``)."""
    if settings.database_url:
        return settings.database_url
    from bot.db import migrate
    from bot.infra.embedded import EmbeddedPostgres

    url = EmbeddedPostgres(settings.data_dir.resolve() / "pgdata").start()
    migrate(url)
    return url


@dataclass(frozen=True, slots=True)
class KnowledgeServices:
    store: KnowledgeStore
    retriever: Retriever
    examples: IntentExamples
    audit: AuditLog


@asynccontextmanager
async def knowledge_services(settings: Settings, url: str) -> AsyncIterator[KnowledgeServices]:
    """The knowledge services on their own small engine (for CLI commands)."""
    from bot.db import create_engine, session_factory
    from bot.wiring.answering import build_embedder, build_retriever, build_second_embedder

    engine = create_engine(url, pool_size=2)
    try:
        sessions = session_factory(engine)
        embedder = build_embedder(settings.knowledge)
        second = build_second_embedder(settings.knowledge)
        yield KnowledgeServices(
            store=KnowledgeStore(sessions, embedder, second),
            retriever=build_retriever(sessions, embedder, settings.knowledge, second=second),
            examples=IntentExamples(sessions, embedder),
            audit=AuditLog(sessions),
        )
    finally:
        await engine.dispose()


async def prepare_knowledge(settings: Settings, url: str) -> str:
    """At startup: load the demo when empty, re-embed stale vectors, seed intent examples."""
    from knowledge.demo import load_demo_if_empty

    async with knowledge_services(settings, url) as kb:
        notes = []
        try:
            if settings.load_demo_kb:
                report = await load_demo_if_empty(kb.store)
                if report is not None:
                    notes.append(f"demo knowledge base loaded ({report.summary()})")
            done = await kb.store.maintain()
            if done["recut"]:
                notes.append(f"{done['recut']} articles cut into passages again")
            if done["reembedded"]:
                notes.append(f"re-embedded {done['reembedded']} chunks with "
                             f"{kb.store.embedder.name}")
            if done["second_vectors"]:
                notes.append(f"{done['second_vectors']} passages embedded by the second model")
            seeded = await kb.examples.seed()
            if seeded:
                notes.append(f"{seeded} intent examples seeded")
            await kb.examples.vectors()
            if kb.store.second is not None:  # stored, so no customer waits for them
                await kb.examples.second_vectors(kb.store.second)
        except EmbeddingError as exc:
            # A provider's embedding model that is down must not keep the bot from
            # starting: the old vectors keep serving; the re-embed resumes next time.
            notes.append(f"embedding model unavailable ({exc}); run `atiende kb reembed` "
                         "when it is back")
        finally:
            await _close(kb.store.embedder)
    return "; ".join(notes)


async def _close(embedder: object) -> None:
    closer = getattr(embedder, "aclose", None)  # provider embedders hold HTTP clients
    if closer is not None:
        await closer()


def collect_files(paths: list[Path]) -> tuple[list[tuple[str, bytes]], list[str]]:
    """Files to import (folders walked recursively) and the paths that do not exist."""
    files: list[tuple[str, bytes]] = []
    missing: list[str] = []
    for path in paths:
        if path.is_dir():
            for item in sorted(path.rglob("*")):
                if item.is_file() and item.suffix.lower() in IMPORT_SUFFIXES:
                    files.append((str(item), item.read_bytes()))
        elif path.is_file():
            files.append((str(path), path.read_bytes()))
        else:
            missing.append(str(path))
    return files, missing


@kb_app.command("import")
def kb_import(
    paths: Annotated[list[Path], typer.Argument(help="Markdown (.md) and CSV files or folders")],
    replace: Annotated[
        bool, typer.Option("--replace", help="also remove what the import no longer contains")
    ] = False,
    editor: Annotated[str, typer.Option("--editor", help="who is importing (history)")] = "cli",
) -> None:
    """Import articles (front-matter Markdown) and product catalogs (CSV); upsert by id/sku."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from bot.cli.common import settings_for_cli
    from knowledge.store import FileResult

    settings = settings_for_cli()
    console = Console(stderr=True, soft_wrap=True)
    files, missing = collect_files(paths)
    for path in missing:
        console.print(f"[red]error[/red] {path}: no such file or folder")
    if not files:
        console.print("[red]error[/red] nothing to import (.md and .csv files)")
        raise typer.Exit(1)
    url = database_url(settings)

    async def main() -> int:
        async with knowledge_services(settings, url) as kb:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          console=console, transient=True) as progress:
                task = progress.add_task("importando", total=len(files))

                def on_file(result: FileResult) -> None:
                    progress.advance(task)
                    if result.ok:
                        progress.console.print(
                            f"[green]ok[/green] {result.source}: {result.articles} articles, "
                            f"{result.products} products, {result.unchanged} unchanged"
                        )
                    else:
                        where = f"{result.source}:{result.line}" if result.line else result.source
                        progress.console.print(f"[red]error[/red] {where}: {result.error}")

                report = await kb.store.import_files(files, editor=editor, replace=replace,
                                                     on_file=on_file)
            await kb.audit.record(Actor.cli(), "kb.import", None, {
                "files": [name for name, _ in files], "replace": replace, "editor": editor,
                "summary": report.summary()})
            typer.echo(report.summary())
            return 1 if report.failed or missing else 0

    code = asyncio.run(main())
    if code:
        raise typer.Exit(code)


@kb_app.command("reembed")
def kb_reembed() -> None:
    """Re-embed every chunk made by another embedding model than the configured one."""
    from bot.cli.common import settings_for_cli

    settings = settings_for_cli()
    url = database_url(settings)

    async def main() -> int:
        async with knowledge_services(settings, url) as kb:
            try:
                return await kb.store.reembed()
            finally:
                await _close(kb.store.embedder)

    try:
        done = asyncio.run(main())
    except EmbeddingError as exc:
        typer.echo(f"error: {exc} (nothing replaced; run it again to resume)", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"re-embedded {done} chunks")


def eval_command(
    questions: Annotated[
        Path | None, typer.Option("--questions", help="YAML question set (default: the demo's)")
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="an evaluation set: a name under knowledge/evalsets or a "
                     "folder (repeatable); 'all' for every shipped set"),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="one line per question")] = False,
    fit: Annotated[
        bool, typer.Option("--fit", help="fit the ranking and confidence weights on the sets "
                           "(prints them, and leave-one-set-out figures)")
    ] = False,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="with --fit: keep the collected samples here")
    ] = None,
    fit_requests: Annotated[
        Path | None, typer.Option("--fit-requests", help="fit the model that tells requests "
                                  "for a person (buying, one's own records) on the sets and "
                                  "write it here (prints leave-one-set-out figures)")
    ] = None,
) -> None:
    """Score the bot on labelled questions: the demo's set (retrieval hit rate, intents,
    escalation), or other businesses' sets beside the plain-fusion baseline (--set)."""
    from bot.cli.common import settings_for_cli

    settings = settings_for_cli()
    if fit_requests is not None:
        from bot.bench.fit import run_fit_requests

        typer.echo(asyncio.run(run_fit_requests(_set_folders(sets or ["all"]), fit_requests)))
        return
    if fit:
        from bot.bench.fit import run_fit

        typer.echo(asyncio.run(run_fit(settings, _set_folders(sets or ["all"]), cache)))
        return
    if sets:
        _eval_sets(settings, sets, verbose=verbose)
        return
    from bot.bench.evaluation import load_questions, run_eval

    url = database_url(settings)
    cases = load_questions(questions)
    report = asyncio.run(run_eval(settings, url, cases))
    if verbose:
        for line in report.lines():
            typer.echo(line)
    typer.echo(report.summary())


def _eval_sets(settings: Settings, names: list[str], *, verbose: bool) -> None:
    from bot.bench.evalsets import run_sets

    for report in asyncio.run(run_sets(settings, _set_folders(names))):
        if verbose:
            for line in report.lines():
                typer.echo(line)
        typer.echo(report.summary())


def _set_folders(names: list[str]) -> list[Path]:
    from bot.bench.evalsets import shipped_sets

    shipped = {p.name: p for p in shipped_sets(held_out=True)}
    folders: list[Path] = []
    for name in names:
        if name == "all":
            folders += shipped_sets()
        elif name in shipped:
            folders.append(shipped[name])
        elif Path(name).is_dir():
            folders.append(Path(name))
        else:
            typer.echo(f"error: no evaluation set {name!r} (shipped: {', '.join(shipped)})",
                       err=True)
            raise typer.Exit(2)
    return folders


def bench_retrieval(
    chunks: Annotated[int, typer.Option("--chunks")] = 50_000,
    queries: Annotated[int, typer.Option("--queries")] = 200,
    ef_search: Annotated[int, typer.Option("--ef-search")] = 40,
) -> None:
    """Hybrid retrieval p50/p95 and HNSW recall@10 at N chunks (throwaway database)."""
    from bot.bench.retrieval import main
    from bot.cli.common import settings_for_cli

    settings_for_cli()
    typer.echo(main(chunks, queries, ef_search))


def bench_suggestions(
    set_name: Annotated[
        str, typer.Option("--set", help="grouping (the benchmark) or dev (the tuning set), "
                          "or a YAML file of the same shape")
    ] = "grouping",
    runs: Annotated[int, typer.Option("--runs", min=1, max=20, help="shuffled orders")] = 3,
    similarity: Annotated[
        float | None, typer.Option("--similarity", min=0.0, max=1.0,
                                   help="the grouping threshold (default: the setting)")
    ] = None,
) -> None:
    """Group handed-over questions into suggestions (throwaway database): suggestions per
    topic, purity, time per handoff."""
    from bot.bench.suggestions import run_bench, shipped
    from bot.cli.common import settings_for_cli

    settings = settings_for_cli()
    if similarity is not None:
        settings = settings.model_copy(update={"suggestions": settings.suggestions.model_copy(
            update={"group_similarity": similarity})})
    path = Path(set_name) if set_name.endswith((".yaml", ".yml")) else shipped(set_name)
    if not path.exists():
        typer.echo(f"error: no set {set_name!r}", err=True)
        raise typer.Exit(2)
    typer.echo(asyncio.run(run_bench(settings, path, runs=runs)))
