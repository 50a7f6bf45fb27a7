"""Faults: a worker killed with SIGKILL mid-job, Redis down, Redis flushed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import select

from bot.api import create_app
from bot.infra.embedded import EmbeddedRedis
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.conversations import Message
from tests.ops.proof import conversations_script, deliver, verdict, wait_processed


def _worker(database_url: str, redis_url: str, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ATIENDE_DATABASE_URL": database_url,
        "ATIENDE_REDIS_URL": redis_url,
        "ATIENDE_ENV": "test",
        "ATIENDE_DATA_DIR": str(data_dir),
        "ATIENDE_STALLED_JOB_SECONDS": "2",
        "ATIENDE_RECONCILE_INTERVAL_SECONDS": "0.5",
        "ATIENDE_WORKER_CONCURRENCY": "4",
        # small batches (4 conversations each): the kill lands mid-batch, with
        # conversations claimed, instead of after one statement answered everything
        "ATIENDE_WORKER_BATCH": "4",
        "ATIENDE_LOG_LEVEL": "WARNING",
        # this test is about crash recovery: the lexical embedder keeps the worker's
        # start-up and per-message cost small (no 2 s model load per process)
        "ATIENDE_KNOWLEDGE__EMBEDDER": "hashing",
        # its own health port: a worker left over elsewhere must not keep this one down
        "ATIENDE_WORKER_PORT": str(_free_port()),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "worker"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
async def test_worker_killed_mid_job_answers_every_message_exactly_once(
    settings: Settings, database_url: str, redis_url: str, tmp_path: Path,
    figures: list[str],
) -> None:
    # The API process does not run jobs here; a separate worker process does.
    runtime = await Runtime.create(settings, database_url=database_url, redis_url=redis_url)

    async def factory() -> Runtime:
        return runtime

    app = create_app(factory, run_worker=False)
    app.state.runtime = runtime
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    # 500 messages, 50 conversations, each conversation's messages in the order written
    script = conversations_script(conversations=50, per_conversation=10, prefix="wkill")
    try:
        for k in range(10):
            for conversation in script:
                r = await deliver(client, conversation[k])
                assert r["duplicate"] is False
        worker = _worker(database_url, redis_url, tmp_path)
        doing = done = 0
        conninfo = database_url
        # kill it mid-run: some messages answered, conversations claimed, most waiting
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for _ in range(20000):
                doing, done = conn.execute(
                    "SELECT (SELECT count(*) FROM inbound_work WHERE claimed_until > now()), "
                    "(SELECT count(*) FROM messages WHERE direction = 'in' "
                    "AND status = 'processed')"
                ).fetchone()  # type: ignore[misc]
                if doing and done >= 20:
                    break
                await asyncio.sleep(0.002)
        assert doing, "the worker never claimed a conversation"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        with psycopg.connect(conninfo) as conn:
            left = conn.execute(
                "SELECT count(*) FROM messages WHERE direction = 'in' AND status = 'received'"
            ).fetchone()[0]  # type: ignore[index]
        assert left > 0, "the kill came too late to prove anything"

        restarted = _worker(database_url, redis_url, tmp_path)
        start = time.perf_counter()
        try:
            assert await wait_processed(database_url, 500, timeout=120) == 0
        finally:
            os.killpg(restarted.pid, signal.SIGTERM)
            restarted.wait(timeout=20)
        result = verdict(database_url, script, written_order=True)
        result.assert_exactly_once({d.provider_id for conv in script for d in conv})
        figures.append(
            f"crash (worker process, kill -9): killed with {doing} conversations claimed, "
            f"{done} answered, "
            f"{left} of "
            f"500 unprocessed; after restart 500 answered exactly once, 0 order violations, "
            f"in {time.perf_counter() - start:.1f}s"
        )
    finally:
        await client.aclose()
        await runtime.close()


async def test_health_reports_redis_down(settings: Settings, database_url: str) -> None:
    redis = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="atiende-r-")), persistent=False)
    url = redis.start()
    runtime = await Runtime.create(settings, database_url=database_url, redis_url=url)

    async def factory() -> Runtime:
        return runtime

    app = create_app(factory, run_worker=False)
    app.state.runtime = runtime
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            assert (await client.get("/healthz")).status_code == 200
            redis.stop()
            down = await client.get("/healthz")
            assert down.status_code == 503
            assert down.json()["down"] == ["redis"]
            # a message is still stored and answered (PostgreSQL is the record)
            r = await client.post(
                "/api/v1/simulator/messages", json={"from": "+5215512121212", "text": "hola"}
            )
            assert r.status_code == 202
            mid = uuid.UUID(r.json()["message_id"])
            await runtime.pipeline.process_conversation(uuid.UUID(r.json()["conversation_id"]))
            async with runtime.sessions() as s:
                status = await s.scalar(select(Message.status).where(Message.id == mid))
            assert status == "processed"
    finally:
        await runtime.close()
        redis.stop()
