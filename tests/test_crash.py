"""Faults: a worker killed with SIGKILL mid-job, Redis down, Redis flushed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import select

from bot.api import create_app
from bot.container import Runtime
from bot.embedded import EmbeddedRedis
from bot.settings import Settings
from handoff.records import Message


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
        "ATIENDE_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "worker"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


@pytest.mark.slow
async def test_worker_killed_mid_job_answers_every_message_exactly_once(
    settings: Settings, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    # The API process does not run jobs here; a separate worker process does.
    runtime = await Runtime.create(settings, database_url=database_url, redis_url=redis_url)

    async def factory() -> Runtime:
        return runtime

    app = create_app(factory, run_worker=False)
    app.state.runtime = runtime
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    sent: list[str] = []
    try:
        for i in range(300):
            r = await client.post(
                "/api/v1/simulator/messages",
                json={"from": f"+52155100000{i % 30:02d}", "text": f"hola {i}"},
            )
            assert r.status_code == 202
            sent.append(r.json()["message_id"])
        worker = _worker(database_url, redis_url, tmp_path)
        doing = 0
        conninfo = database_url
        for _ in range(400):
            with psycopg.connect(conninfo) as conn:
                doing = conn.execute(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"
                ).fetchone()[0]  # type: ignore[index]
            if doing:
                break
            await asyncio.sleep(0.02)
        assert doing, "the worker never started a job"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        with psycopg.connect(conninfo) as conn:
            left = conn.execute(
                "SELECT count(*) FROM messages WHERE direction = 'in' AND status = 'received'"
            ).fetchone()[0]  # type: ignore[index]
        assert left > 0, "the kill came too late to prove anything"

        restarted = _worker(database_url, redis_url, tmp_path)
        try:
            for _ in range(600):
                with psycopg.connect(conninfo) as conn:
                    left = conn.execute(
                        "SELECT count(*) FROM messages WHERE direction = 'in' "
                        "AND status = 'received'"
                    ).fetchone()[0]  # type: ignore[index]
                if left == 0:
                    break
                await asyncio.sleep(0.1)
            assert left == 0
        finally:
            os.killpg(restarted.pid, signal.SIGTERM)
            restarted.wait(timeout=20)
        async with runtime.sessions() as s:
            replies = Counter(
                str(r)
                for r in (
                    await s.execute(
                        select(Message.in_reply_to).where(Message.in_reply_to.is_not(None))
                    )
                ).scalars()
            )
            statuses = Counter(
                (await s.execute(select(Message.status).where(Message.direction == "in")))
                .scalars()
            )
        assert statuses == {"processed": 300}
        assert set(replies) == set(sent)
        assert set(replies.values()) == {1}  # exactly one reply per message
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
