"""The proofs with real decisions: the knowledge responder on the demo base, customers on
the Cloud API channel (signed webhooks in, a fake Graph server out): duplicates, a worker
killed with SIGKILL, Redis lost. Compact in ``make test``, full size in ``make
reliability``; each prints how many duplicate sends the provider saw."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from bot.api import create_app
from bot.infra.embedded import EmbeddedRedis
from bot.settings import Settings, WhatsAppCloudSettings
from bot.wiring.runtime import Runtime
from knowledge.demo import load_demo_if_empty
from knowledge.embeddings import Embedder
from tests.channels.fake_graph import FakeGraph
from tests.ops.cloud_proof import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    Delivery,
    cloud_env,
    decided,
    deliver,
    script,
    sizes,
)
from tests.ops.proof import wait_processed, with_duplicates


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    fake = FakeGraph()
    fake.start()
    yield fake
    fake.stop()


def cloud_settings(tmp_path: Path, graph: FakeGraph) -> Settings:
    return Settings(
        env="test", data_dir=tmp_path, stalled_job_seconds=2, reconcile_interval_seconds=0.5,
        job_retry_base_seconds=1, worker_concurrency=4, log_level="WARNING",
        whatsapp_cloud=WhatsAppCloudSettings(
            verify_token="verify-me", app_secret=APP_SECRET, access_token="EAAG-proof",
            phone_number_id=PHONE_NUMBER_ID, graph_url=graph.url),
    )


async def api(runtime: Runtime) -> httpx.AsyncClient:
    async def factory() -> Runtime:
        return runtime

    app = create_app(factory, run_worker=False)
    app.state.runtime = runtime
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.fixture
async def demo_runtime(
    tmp_path: Path, graph: FakeGraph, database_url: str, redis_url: str, kb_embedder: Embedder
) -> AsyncIterator[Runtime]:
    """The API side, with the demo knowledge base loaded; no worker unless started."""
    runtime = await Runtime.create(cloud_settings(tmp_path, graph), database_url=database_url,
                                   redis_url=redis_url, embedder=kb_embedder)
    await load_demo_if_empty(runtime.knowledge)
    yield runtime
    await runtime.close()


async def send_all(client: httpx.AsyncClient, stream: list[Delivery], senders: int = 8) -> None:
    queue = list(reversed(stream))

    async def sender() -> None:
        while queue:
            await deliver(client, queue.pop())

    await asyncio.gather(*[sender() for _ in range(senders)])


async def test_duplicates_with_real_decisions_through_the_cloud_api(
    demo_runtime: Runtime, graph: FakeGraph, database_url: str, figures: list[str]
) -> None:
    conversations = sizes(20, 70)
    plan = script(conversations, 10, "dup")
    unique = [d for conv in plan for d in conv]
    stream = with_duplicates(unique, share=0.30, rng=random.Random(20))  # type: ignore[arg-type]
    demo_runtime.start_worker()
    start = time.perf_counter()
    async with await api(demo_runtime) as client:
        await send_all(client, stream)  # type: ignore[arg-type]
    assert await wait_processed(database_url, len(unique), timeout=300) == 0
    elapsed = time.perf_counter() - start
    result = decided(database_url, graph, "dup")
    result.assert_decided_once(len(unique))
    assert result.provider_duplicates == 0
    figures.append(
        f"duplicates, knowledge responder on the demo base, Cloud API: {len(stream)} "
        f"deliveries ({len(stream) - len(unique)} duplicates, reordered) -> {len(unique)} "
        f"stored and decided once, {result.replies} replies, {result.provider_sends} sends "
        f"to Graph, {result.provider_duplicates} duplicate sends, in {elapsed:.1f}s")


def worker(database_url: str, redis_url: str, data_dir: Path, graph: FakeGraph
           ) -> subprocess.Popen[bytes]:
    env = {
        **os.environ, **cloud_env(graph),
        "ATIENDE_DATABASE_URL": database_url, "ATIENDE_REDIS_URL": redis_url,
        "ATIENDE_ENV": "test", "ATIENDE_DATA_DIR": str(data_dir),
        "ATIENDE_STALLED_JOB_SECONDS": "2", "ATIENDE_RECONCILE_INTERVAL_SECONDS": "0.5",
        "ATIENDE_WORKER_CONCURRENCY": "4", "ATIENDE_WORKER_BATCH": "4",
        "ATIENDE_WORKER_PORT": "0", "ATIENDE_LOG_LEVEL": "WARNING",
        # the fake Graph answers at once: a claim older than this is a dead sender's
        "ATIENDE_SEND_CLAIM_SECONDS": "5",
    }
    return subprocess.Popen([sys.executable, "-m", "bot", "worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def counts(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM messages WHERE direction = 'in' "
            "AND status = 'received'), (SELECT count(*) FROM messages WHERE direction = 'out' "
            "AND status = 'sending')").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.mark.slow
async def test_worker_killed_with_real_decisions_through_the_cloud_api(
    demo_runtime: Runtime, graph: FakeGraph, database_url: str, redis_url: str,
    tmp_path: Path, figures: list[str],
) -> None:
    conversations = sizes(12, 50)
    plan = script(conversations, 10, "kill")
    total = conversations * 10
    async with await api(demo_runtime) as client:
        for k in range(10):  # each conversation's messages in the order written
            for conv in plan:
                await deliver(client, conv[k])
    first = worker(database_url, redis_url, tmp_path, graph)
    try:
        deadline = time.monotonic() + 120
        while len(graph.sends()) < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    waiting, in_flight = counts(database_url)  # rows the dead worker held mid-send
    sent_before = len(graph.sends())
    assert waiting > 0, "the kill came too late to prove anything"
    restarted = worker(database_url, redis_url, tmp_path, graph)
    start = time.perf_counter()
    try:
        assert await wait_processed(database_url, total, timeout=300) == 0
    finally:
        os.killpg(restarted.pid, signal.SIGTERM)
        restarted.wait(timeout=30)
    result = decided(database_url, graph, "kill")
    result.assert_decided_once(total)
    assert result.provider_duplicates <= in_flight, (result.provider_duplicates, in_flight)
    figures.append(
        f"crash (worker kill -9), knowledge responder, Cloud API: killed after {sent_before} "
        f"sends with {waiting} of {total} messages undecided and {in_flight} sends in flight; "
        f"after restart {total} decided once, {result.replies} replies, "
        f"{result.provider_sends} sends to Graph, {result.provider_duplicates} duplicate "
        f"sends (at most {in_flight} allowed), in {time.perf_counter() - start:.1f}s")


async def test_redis_lost_with_real_decisions_through_the_cloud_api(
    tmp_path: Path, graph: FakeGraph, database_url: str, own_redis: EmbeddedRedis,
    kb_embedder: Embedder, figures: list[str],
) -> None:
    runtime = await Runtime.create(cloud_settings(tmp_path, graph), database_url=database_url,
                                   redis_url=own_redis.url, embedder=kb_embedder)
    await load_demo_if_empty(runtime.knowledge)
    runtime.start_worker()
    conversations = sizes(10, 30)
    plan = script(conversations, 10, "redis")
    total = conversations * 10
    try:
        async with await api(runtime) as client:
            start = time.perf_counter()
            for k in range(10):
                if k == 3:
                    await runtime.redis.flushall()
                if k == 5:
                    await asyncio.to_thread(own_redis.stop)
                if k == 8:
                    await asyncio.to_thread(own_redis.start)
                await asyncio.gather(*[deliver(client, conv[k]) for conv in plan])
            assert await wait_processed(database_url, total, timeout=300) == 0
            elapsed = time.perf_counter() - start
    finally:
        await runtime.close()
    result = decided(database_url, graph, "redis")
    result.assert_decided_once(total)
    assert result.provider_duplicates == 0
    figures.append(
        f"redis loss, knowledge responder, Cloud API: FLUSHALL after {3 * conversations}, "
        f"redis-server down for {3 * conversations}, restarted: {total} decided once, "
        f"{result.replies} replies, {result.provider_duplicates} duplicate sends to Graph, "
        f"in {elapsed:.1f}s")
