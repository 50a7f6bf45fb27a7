"""Proof: the API process (uvicorn, running the worker too) killed with SIGKILL mid-run.

500 messages from 50 customers are in flight; each customer's phone delivers its
messages one after another and redelivers what was not acknowledged, as WhatsApp
does. After the restart every message is stored once, answered exactly once, and
in order per conversation.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.ops.proof import (
    Delivery,
    LiveServer,
    conversations_script,
    dead_letters,
    deliver,
    verdict,
    wait_processed,
)


def _counts(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'received') "
            "FROM messages WHERE direction = 'in'"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.mark.slow
async def test_api_process_killed_with_500_in_flight(
    database_url: str, redis_url: str, tmp_path: Path, figures: list[str]
) -> None:
    script = conversations_script(conversations=50, per_conversation=10, prefix="apikill")
    server = LiveServer(database_url, redis_url, tmp_path)
    server.start()
    acked = 0

    async def customer(client: httpx.AsyncClient, messages: list[Delivery]) -> None:
        nonlocal acked
        for d in messages:
            await deliver(client, d, retry_for=90)
            acked += 1

    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            senders = asyncio.gather(*[customer(client, conv) for conv in script])
            # kill when a good part is stored and some of it is still waiting for the worker
            killed_at = None
            for _ in range(3000):
                stored, waiting = await asyncio.to_thread(_counts, database_url)
                if stored >= 150 and waiting > 0:
                    server.kill()
                    killed_at = (stored, waiting)
                    break
                await asyncio.sleep(0.01)
            assert killed_at, "the server finished before it could be killed"
            await asyncio.sleep(1.0)  # deliveries fail while it is down
            start = time.perf_counter()
            server.start()
            await senders
        assert await wait_processed(database_url, 500, timeout=180) == 0
        recovered = time.perf_counter() - start
    finally:
        server.stop()
    result = verdict(database_url, script, written_order=True)
    result.assert_exactly_once({d.provider_id for conv in script for d in conv})
    assert dead_letters(database_url) == 0
    figures.append(
        f"crash (API+worker process, kill -9): killed with {killed_at[0]} stored / "
        f"{killed_at[1]} unprocessed of 500; after restart 500 stored once, 500 replies, "
        f"0 order violations; recovered in {recovered:.1f}s"
    )
