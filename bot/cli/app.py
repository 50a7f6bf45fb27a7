"""The ``atiende`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from bot.cli import speech as speech_cli
from bot.cli.common import settings_for_cli
from bot.cli.kb import bench_retrieval, bench_suggestions, eval_command, kb_app
from bot.infra import aio
from bot.settings import Settings, load_settings

app = typer.Typer(help="Atiende: WhatsApp customer-service bot.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks (print figures; see BENCHMARKS.md).")
app.add_typer(bench_app, name="bench")
app.add_typer(kb_app, name="kb")
app.command("eval")(eval_command)
bench_app.command("retrieval")(bench_retrieval)
bench_app.command("suggestions")(bench_suggestions)
app.add_typer(speech_cli.models_app, name="models")
bench_app.command("speech")(speech_cli.bench_speech)


def _register_subcommands() -> None:
    from bot.cli import apikeys as cli_apikeys
    from bot.cli import backup as cli_backup
    from bot.cli import campaigns as cli_campaigns
    from bot.cli import contacts as cli_contacts
    from bot.cli import jobs as cli_jobs
    from bot.cli import llm as cli_llm
    from bot.cli import sequences as cli_sequences
    from bot.cli import users as cli_users

    app.add_typer(cli_users.app, name="users")
    app.add_typer(cli_jobs.app, name="jobs")
    app.add_typer(cli_llm.app, name="llm")
    app.add_typer(cli_backup.app, name="backup")
    app.add_typer(cli_campaigns.app, name="campaigns")
    app.add_typer(cli_apikeys.app, name="apikeys")
    app.add_typer(cli_contacts.app, name="contacts")
    app.add_typer(cli_sequences.app, name="sequences")


_register_subcommands()

DEMO_PHONE = "+5215512345678"




def _runtime_factory(settings: Settings, database_url: str, redis_url: str):  # type: ignore[no-untyped-def]
    from bot.wiring.runtime import Runtime

    async def factory() -> Runtime:
        return await Runtime.create(settings, database_url=database_url, redis_url=redis_url)

    return factory


def _serve(settings: Settings, database_url: str, redis_url: str, *, run_worker: bool) -> None:
    import uvicorn

    from bot.api import create_app

    api = create_app(_runtime_factory(settings, database_url, redis_url), run_worker=run_worker)
    uvicorn.run(api, host=settings.host, port=settings.port, log_level="warning", access_log=False)


@app.command()
def run() -> None:
    """Start everything on this machine (embedded PostgreSQL and Redis when not configured)."""
    from bot.db import migrate
    from bot.infra.backing import backing_services

    settings = settings_for_cli()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    pidfile = settings.data_dir / "run.pid"
    pidfile.write_text(str(os.getpid()))
    backing = backing_services(settings)
    try:
        migrate(backing.database_url)
        from bot.cli.kb import prepare_knowledge

        notes = asyncio.run(prepare_knowledge(settings, backing.database_url))
        if notes:
            typer.echo(notes)
        typer.echo(f"Atiende en http://{settings.host}:{settings.port}  (simulador: /simulator)")
        _serve(settings, backing.database_url, backing.redis_url, run_worker=True)
    finally:
        backing.stop()
        pidfile.unlink(missing_ok=True)


@app.command()
def stop() -> None:
    """Stop what ``atiende run`` started (also after it was killed)."""
    from bot.infra.embedded import EmbeddedPostgres, EmbeddedRedis

    settings = load_settings()
    pidfile = settings.data_dir / "run.pid"
    if pidfile.exists():
        pid = int(pidfile.read_text().strip() or 0)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
        pidfile.unlink(missing_ok=True)
    data_dir = settings.data_dir.resolve()
    EmbeddedRedis(data_dir / "redis").stop()
    EmbeddedPostgres(data_dir / "pgdata").stop()
    typer.echo("stopped")


@app.command()
def serve() -> None:
    """Serve the HTTP API only (production: run workers with ``atiende worker``)."""
    from bot.infra.backing import backing_services

    settings = settings_for_cli()
    backing = backing_services(settings)
    _serve(settings, backing.database_url, backing.redis_url, run_worker=settings.run_worker_in_app)


@app.command()
def worker() -> None:
    """Run the job worker and reconciler; ``/healthz`` and ``/metrics`` on ATIENDE_WORKER_PORT."""
    from bot.infra.backing import backing_services
    from bot.wiring.runtime import Runtime

    settings = settings_for_cli()
    backing = backing_services(settings)

    async def main() -> None:
        from bot.api.worker_http import WorkerHttp

        runtime = await Runtime.create(
            settings, database_url=backing.database_url, redis_url=backing.redis_url
        )
        stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_event.set)
        http = None
        if settings.worker_port:  # its health and metrics (the worker serves no API)
            http = WorkerHttp(runtime, host=settings.host, port=settings.worker_port)
            await http.start()
        runtime.start_worker()
        try:
            await stop_event.wait()
        finally:
            if http is not None:
                await http.close()
            await runtime.close()

    aio.run(main())


@app.command("migrate")
def migrate_command() -> None:
    """Apply database migrations."""
    from bot.db import migrate
    from bot.infra.backing import backing_services

    settings = settings_for_cli()
    migrate(backing_services(settings).database_url)
    typer.echo("migrations applied")


@app.command()
def ask(
    text: Annotated[str | None, typer.Option("--text", help="customer text")] = None,
    audio: Annotated[Path | None, typer.Option("--audio", help="voice note file")] = None,
    from_: Annotated[str, typer.Option("--from", help="customer phone")] = DEMO_PHONE,
    name: Annotated[str | None, typer.Option("--name")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    timeout: Annotated[float, typer.Option("--timeout")] = 30.0,
) -> None:
    """Send one customer message through the running server's simulator and wait for it."""
    if (text is None) == (audio is None):
        _fail("give exactly one of --text or --audio")
    base = os.environ.get("ATIENDE_URL", "http://127.0.0.1:8000").rstrip("/")
    deadline = time.monotonic() + timeout
    # a production server with the simulator on wants a staff login: a token or API key
    token = os.environ.get("ATIENDE_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=base, timeout=timeout + 5, headers=headers) as client:
            if audio is not None:
                if not audio.exists():
                    _fail(f"{audio}: no such file")
                files = {"audio": (audio.name, audio.read_bytes())}
                data = {"from": from_, **({"name": name} if name else {})}
                response = client.post("/api/v1/simulator/voice", data=data, files=files)
            else:
                body = {"from": from_, "text": text, **({"name": name} if name else {})}
                response = client.post("/api/v1/simulator/messages", json=body)
            if response.status_code >= 400:
                _fail(f"server refused the message ({response.status_code}): {response.text}")
            message_id = response.json()["message_id"]
            outcome = None
            while (remaining := deadline - time.monotonic()) > 0:
                r = client.get(
                    f"/api/v1/simulator/messages/{message_id}", params={"wait": min(remaining, 10)}
                )
                r.raise_for_status()
                outcome = r.json()
                if outcome["status"] != "received":
                    break
            if outcome is None or outcome["status"] == "received":
                _fail(f"timed out after {timeout:g}s waiting for message {message_id}")
    except httpx.HTTPError as exc:
        _fail(f"cannot reach Atiende at {base}: {exc}")
    assert outcome is not None
    result = {k: outcome[k] for k in (
        "conversation_id", "message_id", "transcript", "intent", "confidence", "escalated",
        "owner", "replies", "sources",
    )}
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
    else:
        for reply in result["replies"]:
            typer.echo(reply)
        if not result["replies"]:
            typer.echo(f"(sin respuesta del bot; owner={result['owner']})")


def _fail(reason: str) -> None:
    typer.echo(f"error: {reason}", err=True)
    raise typer.Exit(1)


@bench_app.command("pipeline")
def bench_pipeline(
    messages: Annotated[int, typer.Option("--messages", "-n")] = 3000,
    conversations: Annotated[int, typer.Option("--conversations", "-m")] = 300,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", help="inbound batches started at once per worker "
                     "process (default: ATIENDE_INBOUND_CONCURRENCY)"),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option("--batch", help="conversations one batch may take "
                     "(default: ATIENDE_WORKER_BATCH)"),
    ] = None,
    responder: Annotated[
        str, typer.Option("--responder", help="rules (the first responder) or knowledge")
    ] = "rules",
    workers: Annotated[
        int, typer.Option("--workers", help="worker processes (0: inside the bench process)")
    ] = 1,
    steady_rate: Annotated[
        float, typer.Option("--steady-rate", min=1, help="messages/s of the steady phase")
    ] = 30.0,
    traffic: Annotated[
        str, typer.Option("--traffic", help="greetings (the plumbing figure) or realistic "
                          "(questions from the question sets, knowledge responder, demo base "
                          "plus --chunks synthetic passages)")
    ] = "greetings",
    chunks: Annotated[
        int, typer.Option("--chunks", help="synthetic passages added with --traffic realistic")
    ] = 50_000,
) -> None:
    """N inbound messages across M conversations through the real pipeline (responder only)."""
    from bot.bench.pipeline import run_pipeline_bench

    if responder not in ("rules", "knowledge"):
        _fail("--responder must be 'rules' or 'knowledge'")
    if traffic not in ("greetings", "realistic"):
        _fail("--traffic must be 'greetings' or 'realistic'")
    settings = settings_for_cli()
    report = aio.run(
        run_pipeline_bench(settings, messages=messages, conversations=conversations,
                           concurrency=concurrency or settings.inbound_concurrency,
                           batch=batch or settings.worker_batch,
                           responder=responder, workers=workers,
                           steady_rate=steady_rate, traffic=traffic, chunks=chunks)
    )
    typer.echo(report)


@bench_app.command("inbox")
def bench_inbox(
    conversations: Annotated[int, typer.Option("--conversations", "-m")] = 10_000,
    rounds: Annotated[int, typer.Option("--rounds", help="passes over the list queries")] = 20,
) -> None:
    """The inbox list with M conversations: list API p50/p95/p99 and the page in Chromium."""
    from bot.api import create_app
    from bot.bench.inbox import run_inbox_bench

    typer.echo(aio.run(run_inbox_bench(
        settings_for_cli(), conversations=conversations, rounds=rounds,
        make_app=lambda factory: create_app(factory, run_worker=False),
    )))


@bench_app.command("erasure")
def bench_erasure(
    customers: Annotated[int, typer.Option("--customers", "-n", min=1)] = 10_000,
    messages: Annotated[int, typer.Option("--messages", "-m", min=1)] = 20,
    rate: Annotated[float, typer.Option("--rate", min=1, help="messages/s of the load")] = 20.0,
    batch: Annotated[int | None, typer.Option(
        "--batch", help="customers per transaction (default: ATIENDE_PRIVACY__ERASE_BATCH)")
    ] = None,
    pause: Annotated[float | None, typer.Option(
        "--pause", help="seconds between batches (default: …__BATCH_PAUSE_SECONDS)")] = None,
    yield_ratio: Annotated[float | None, typer.Option(
        "--yield", help="rest this many times a batch's time (default: …__ERASE_YIELD)")
    ] = None,
) -> None:
    """Erase N customers (the real command) under a steady load; compare its latency."""
    from bot.bench.erasure import run_erasure_bench

    settings = settings_for_cli()
    privacy = settings.privacy
    typer.echo(aio.run(run_erasure_bench(
        settings, customers=customers, messages=messages, rate=rate,
        batch=batch or privacy.erase_batch,
        pause=privacy.batch_pause_seconds if pause is None else pause,
        yield_ratio=privacy.erase_yield if yield_ratio is None else yield_ratio)))


def main() -> None:
    from pydantic import ValidationError

    try:
        app()
    except ValidationError as exc:  # settings from the environment that make no sense
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        typer.echo(f"error: invalid settings: {reasons}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
