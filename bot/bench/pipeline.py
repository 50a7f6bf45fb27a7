"""``atiende bench pipeline``: throughput and latency of the real pipeline (responder only).

Runs on its own throwaway embedded PostgreSQL and Redis so it never touches real data.
Latency is measured inside the database: inbound accepted (row committed) → reply row
in the outbox, both stamped with clock_timestamp().
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bot.answering.responder import Persona, RuleResponder
from bot.bench.traffic import Greetings, Realistic, Traffic
from bot.channels.simulation import SimulatorService
from bot.db import migrate
from bot.infra import aio
from bot.infra.embedded import EmbeddedServices
from bot.logs import configure_logging
from bot.settings import Settings
from bot.wiring.runtime import Runtime


async def _insert_rate(database_url: str, seconds: float = 2.0) -> float:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_insert (id bigserial, v text)")
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            await conn.execute("INSERT INTO bench_insert (v) VALUES (%s)", ("x",))
            n += 1
        rate = n / (time.perf_counter() - start)
        await conn.execute("DROP TABLE bench_insert")
    return rate


class CpuMeter:
    """CPU seconds spent by each part of the bench (read from /proc, so a busy machine
    does not hide the cost): this process (the API's inbound path), the worker
    processes, the bench's PostgreSQL and Redis, and everything else on the machine."""

    def __init__(self, data_dir: Path, worker_pids: list[int]) -> None:
        marker = str(data_dir)
        roots: dict[str, list[psutil.Process]] = {
            "api": [psutil.Process()], "worker": [psutil.Process(p) for p in worker_pids],
            "postgresql": [], "redis": [],
        }
        for process in psutil.process_iter(["cmdline", "name"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if marker in cmdline:
                group = "redis" if "redis" in (process.info["name"] or "") else "postgresql"
                roots[group].append(process)
        self._roots = roots

    def snapshot(self) -> dict[str, float]:
        seen: set[int] = set()
        totals: dict[str, float] = {}
        for group, roots in self._roots.items():
            spent = 0.0
            for root in roots:
                try:
                    family = [root, *root.children(recursive=True)]
                except psutil.NoSuchProcess:
                    continue
                for process in family:
                    if process.pid in seen or (group == "api" and process is not root):
                        continue
                    seen.add(process.pid)
                    try:
                        times = process.cpu_times()
                    except psutil.NoSuchProcess:
                        continue
                    spent += times.user + times.system
                    if process is root and group != "api":
                        # children that ended (a PostgreSQL backend closed) keep counting
                        spent += times.children_user + times.children_system
            totals[group] = spent
        machine = psutil.cpu_times()
        totals["machine"] = machine.user + machine.system + machine.nice
        return totals

    async def workers_idle(self, *, busy: float = 0.05, interval: float = 0.5,
                           timeout: float = 120.0) -> float:
        """Wait until the worker processes spend under ``busy`` of a core (they load their
        models at start); return the seconds waited."""
        start = time.perf_counter()
        before = self.snapshot()["worker"]
        while time.perf_counter() - start < timeout:
            await asyncio.sleep(interval)
            now = self.snapshot()["worker"]
            if now - before < busy * interval * max(1, len(self._roots["worker"])):
                break
            before = now
        return time.perf_counter() - start

    @staticmethod
    def per_message(before: dict[str, float], after: dict[str, float], n: int) -> str:
        spent = {k: after[k] - before[k] for k in before}
        ours = sum(v for k, v in spent.items() if k != "machine")
        parts = "  ".join(
            f"{k} {spent[k] / n * 1000:.2f}" for k in ("api", "worker", "postgresql", "redis")
        )
        others = max(0.0, spent["machine"] - ours)
        return (
            f"CPU ms per message: {parts}  = {ours / n * 1000:.2f} "
            f"(other processes on the machine: {others / n * 1000:.2f})"
        )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _bench_settings(settings: Settings, concurrency: int, batch: int) -> Settings:
    speech = settings.speech.model_copy(update={"warm_at_start": False})  # no voice here
    return settings.model_copy(
        update={"inbound_concurrency": concurrency, "worker_batch": batch,
                "log_level": "WARNING", "speech": speech}
    )


def _responder(settings: Settings, responder: str) -> RuleResponder | None:
    if responder == "rules":
        return RuleResponder(Persona(settings.bot_name, settings.business_name, settings.language))
    return None  # None: the knowledge responder main ships


async def run_pipeline_bench(
    settings: Settings, *, messages: int, conversations: int, concurrency: int, batch: int,
    responder: str = "rules", workers: int = 1, steady_rate: float = 30.0,
    traffic: str = "greetings", chunks: int = 50_000,
) -> str:
    """``workers`` = 0 runs the worker inside the bench process (API and worker share one
    Python process); N ≥ 1 starts N worker processes, the production shape (compose runs
    ``app`` and ``worker`` apart), while this process plays the API's inbound path.
    ``traffic="realistic"`` answers with the knowledge responder on the demo base plus
    ``chunks`` synthetic passages (``bot.bench.traffic``)."""
    services = EmbeddedServices(Path(tempfile.mkdtemp(prefix="atiende-bench-")), ephemeral=True)
    database_url, redis_url = services.start()
    children: list[subprocess.Popen[bytes]] = []
    texts: Traffic = Greetings()
    if traffic == "realistic":
        responder, texts = "knowledge", Realistic()
    try:
        migrate(database_url)
        configure_logging("WARNING", json=True)
        bench_settings = _bench_settings(settings, concurrency, batch)
        runtime = await Runtime.create(
            bench_settings, database_url=database_url, redis_url=redis_url,
            responder=_responder(settings, responder),
        )
        if traffic == "realistic":
            await load_big_base(runtime, database_url, chunks)
        try:
            if workers == 0:
                runtime.start_worker()
            for _ in range(workers):
                children.append(subprocess.Popen(
                    [sys.executable, "-m", "bot.bench.pipeline", database_url, redis_url, responder,
                     str(concurrency), str(batch)],
                    env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                ))
            meter = CpuMeter(services.data_dir, [child.pid for child in children])
            report = await _measure(
                runtime, database_url, messages, conversations, steady_rate, meter, texts
            )
            shape = (
                "worker inside the bench process" if workers == 0
                else f"{workers} worker process(es), each starting {concurrency} batches "
                f"at once, up to {batch} conversations per batch"
            )
            return f"responder: {responder}; {shape}\n{report}"
        finally:
            for child in children:
                child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
            await runtime.close()
    finally:
        services.stop()


async def load_big_base(runtime: Runtime, database_url: str, chunks: int) -> None:
    """The demo knowledge base, plus ``chunks`` synthetic passages (both models' vectors,
    full text) so retrieval works at the size the issue names."""
    from bot.bench.retrieval import synthetic_passages
    from knowledge.demo import demo_files
    from knowledge.derived import refresh_lexicon

    report = await runtime.knowledge.import_files(demo_files(), editor="bench")
    assert not report.failed, report.summary()
    await runtime.intent_examples.seed()
    if chunks:
        await synthetic_passages(database_url, chunks, first_id=10_000_000)
        await refresh_lexicon(runtime.sessions)


async def _worker_process(
    database_url: str, redis_url: str, responder: str, concurrency: int, batch: int
) -> None:
    """One bench worker process: the real worker, stopped by SIGTERM."""
    configure_logging("WARNING", json=True)
    settings = Settings()
    runtime = await Runtime.create(
        _bench_settings(settings, concurrency, batch), database_url=database_url,
        redis_url=redis_url, responder=_responder(settings, responder),
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    runtime.start_worker()
    try:
        await stop.wait()
    finally:
        await runtime.close()


async def _wait_all_replied(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while True:
            # latencies are stamped inside PostgreSQL, so a lazy poll costs no accuracy
            cur = await conn.execute(
                "SELECT 1 FROM messages WHERE direction='in' AND status='received' LIMIT 1"
            )
            if await cur.fetchone() is None:
                return
            await asyncio.sleep(0.05)


async def _commits(database_url: str, prefix: str) -> int:
    """Transactions that marked the phase's messages processed: messages committed
    together share their row's xmin (the worker commits each group in one statement)."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(DISTINCT xmin::text) FROM messages "
            "WHERE direction = 'in' AND provider_message_id LIKE %s",
            (prefix + "%",),
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def _latencies(database_url: str, prefix: str) -> list[float]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT extract(epoch FROM min(r.created_at) - m.created_at) * 1000 "
            "FROM messages m JOIN messages r ON r.in_reply_to = m.id "
            "WHERE m.direction = 'in' AND m.provider_message_id LIKE %s "
            "GROUP BY m.id, m.created_at",
            (prefix + "%",),
        )
        return [float(r[0]) for r in await cur.fetchall()]


def _summary(values: list[float]) -> str:
    return (
        f"p50 {_pct(values, 50):.1f}  p95 {_pct(values, 95):.1f}  p99 {_pct(values, 99):.1f}"
        f"  (mean {statistics.fmean(values):.1f}, n={len(values)})"
    )


@dataclass
class Phase:
    """What one phase of the bench measured."""

    offered: int
    elapsed: float
    accepted: float
    cpu: str
    commits: int
    latencies: list[float]


async def _measure(
    runtime: Runtime, database_url: str, messages: int, conversations: int,
    steady_rate: float, meter: CpuMeter, texts: Traffic,
) -> str:
    insert_rate = await _insert_rate(database_url)
    sim = SimulatorService(
        sessions=runtime.sessions, ingestor=runtime.ingestor, events=runtime.events,
        clock=runtime.clock, default_region="MX",
    )

    async def send(i: int, prefix: str) -> None:
        await sim.send(
            phone=f"+52155{50000000 + i % conversations:08d}",
            text=texts.text(i), name=None, message_id=f"{prefix}{i}",
        )

    # Warm-up (not measured): the worker processes are up, answering, and done loading
    # their models (each loads them at start, as in production).
    await send(0, "warm-")
    await _wait_all_replied(database_url)
    await meter.workers_idle()
    # Phase 1: a steady offered load on the warm system, before any backlog (right after
    # a saturating burst the worker stalls for seconds while PostgreSQL cleans the
    # burst's finished rows; that recovery is not the steady state).
    steady = await _steady(send, database_url, meter, max(50, messages // 3), steady_rate)
    # Phase 2: saturation. Everything offered at once; time until every reply is written.
    burst = await _saturate(send, database_url, meter, messages)
    throughput = messages / burst.elapsed
    return "\n".join([
        f"pipeline: {messages} messages, {conversations} conversations; traffic: "
        f"{texts.describe()}",
        f"  saturation: accepted in {burst.accepted:.2f}s ({messages / burst.accepted:.0f}/s), "
        f"all replied in {burst.elapsed:.2f}s",
        f"  throughput: {throughput:.0f} messages/s",
        f"  latency accepted->reply in outbox at saturation (ms): {_summary(burst.latencies)}",
        f"  saturation {burst.cpu}",
        f"  saturation commits: {burst.commits} for {messages} messages "
        f"({messages / max(burst.commits, 1):.1f} messages per commit)",
        f"  latency at a steady {steady_rate:.0f} messages/s (ms): {_summary(steady.latencies)}",
        f"  steady {steady.cpu}",
        f"  steady commits: {steady.commits} for {steady.offered} messages "
        f"({steady.offered / max(steady.commits, 1):.1f} messages per commit)",
        f"  raw PostgreSQL single-row insert rate (autocommit): {insert_rate:.0f} rows/s",
        f"  ratio throughput/insert rate: {throughput / insert_rate:.3f}",
    ])


Send = Callable[[int, str], Coroutine[Any, Any, None]]


async def _steady(send: Send, database_url: str, meter: CpuMeter, count: int,
                  rate: float) -> Phase:
    before = meter.snapshot()
    tasks = []
    begin = time.perf_counter()
    for i in range(count):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i, "paced-")))
    await asyncio.gather(*tasks)
    await _wait_all_replied(database_url)
    elapsed = time.perf_counter() - begin
    return Phase(count, elapsed, elapsed, meter.per_message(before, meter.snapshot(), count),
                 await _commits(database_url, "paced-"),
                 await _latencies(database_url, "paced-"))


async def _saturate(send: Send, database_url: str, meter: CpuMeter, count: int) -> Phase:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def producer() -> None:
        while not queue.empty():
            await send(queue.get_nowait(), "sat-")

    before = meter.snapshot()
    start = time.perf_counter()
    await asyncio.gather(*[producer() for _ in range(8)])
    accepted = time.perf_counter() - start
    await _wait_all_replied(database_url)
    elapsed = time.perf_counter() - start
    return Phase(count, elapsed, accepted, meter.per_message(before, meter.snapshot(), count),
                 await _commits(database_url, "sat-"), await _latencies(database_url, "sat-"))


if __name__ == "__main__":
    db_url, cache_url, chosen, jobs, per_job = sys.argv[1:6]
    aio.run(_worker_process(db_url, cache_url, chosen, int(jobs), int(per_job)))
