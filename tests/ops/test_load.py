"""Load over HTTP for several minutes (``make reliability`` only): throughput, latency,
and memory that does not grow with the number of conversations.

The server is ``atiende serve`` (API + worker in one uvicorn process) on this 2-core
machine. Two phases of equal length: customers drawn from 100 phones, then from
10,000 phones. The server's RSS is sampled every few seconds; after a warm-up its
end-of-phase values must differ by less than 20 MB.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.ops.proof import FULL, TEXTS, LiveServer, phone, wait_processed

PHASE_SECONDS = float(os.environ.get("ATIENDE_LOAD_PHASE_SECONDS", "120"))
SENDERS = 8


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _phase(
    server: LiveServer, conversations: int, seconds: float, tag: str
) -> tuple[list[float], list[float], int, list[tuple[float, int]]]:
    latencies: list[float] = []
    replied: list[float] = []
    rss: list[tuple[float, int]] = []
    stop = time.monotonic() + seconds
    counter = 0

    async def sender(client: httpx.AsyncClient, k: int) -> None:
        nonlocal counter
        while time.monotonic() < stop:
            counter += 1
            n = counter
            body = {
                "from": phone((n * 7919) % conversations), "text": TEXTS[n % len(TEXTS)],
                "message_id": f"{tag}-{n}",
            }
            t0 = time.perf_counter()
            r = await client.post("/api/v1/simulator/messages", json=body)
            latencies.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 202, r.text
            # closed loop on the answer: a customer waits for the reply before writing
            # again, so the offered load follows what the machine can answer
            done = await client.get(
                f"/api/v1/simulator/messages/{r.json()['message_id']}", params={"wait": 30}
            )
            assert done.status_code == 200 and done.json()["status"] == "processed"
            replied.append((time.perf_counter() - t0) * 1000)

    async def sampler() -> None:
        start = time.monotonic()
        while time.monotonic() < stop:
            rss.append((time.monotonic() - start, server.rss_bytes()))
            await asyncio.sleep(5)

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await asyncio.gather(sampler(), *[sender(client, k) for k in range(SENDERS)])
    return latencies, replied, counter, rss


def _seed_conversations(database_url: str, count: int) -> None:
    """``count`` customers with a conversation and one answered exchange each, in the
    record, so the second phase runs against 10,000 real conversations even where the
    machine answers only a few messages per second."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO contacts (id, phone_e164) SELECT gen_random_uuid(), "
            "'+5255' || to_char(40000000 + g, 'FM00000000') "
            "FROM generate_series(0, %s - 1) g "
            "ON CONFLICT DO NOTHING", (count,),
        )
        conn.execute(
            "INSERT INTO conversations (id, contact_id, channel, account, owner) "
            "SELECT gen_random_uuid(), id, 'simulator', 'demo', 'bot' FROM contacts "
            "ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "INSERT INTO messages (id, conversation_id, direction, author, kind, channel, "
            "text, status, processed_at) SELECT gen_random_uuid(), id, 'in', 'customer', "
            "'text', 'simulator', 'hola', 'processed', now() FROM conversations"
        )


def _end_to_end(database_url: str, tag: str) -> list[float]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM min(r.created_at) - m.created_at) * 1000 "
            "FROM messages m JOIN messages r ON r.in_reply_to = m.id "
            "WHERE m.direction = 'in' AND m.provider_message_id LIKE %s GROUP BY m.id",
            (tag + "-%",),
        ).fetchall()
    return [float(r[0]) for r in rows]


@pytest.mark.skipif(not FULL, reason="minutes long: run by `make reliability`")
async def test_sustained_load_memory_flat_100_vs_10000_conversations(
    database_url: str, redis_url: str, tmp_path: Path, figures: list[str]
) -> None:
    server = LiveServer(
        database_url, redis_url, tmp_path, extra_env={"ATIENDE_WORKER_CONCURRENCY": "8"}
    )
    server.start()
    try:
        await _phase(server, 100, min(20.0, PHASE_SECONDS / 4), "warm")  # warm-up
        assert await wait_processed(database_url, 0, timeout=300) == 0
        results = {}
        for conversations, tag in ((100, "c100"), (10_000, "c10000")):
            if conversations > 100:
                await asyncio.to_thread(_seed_conversations, database_url, conversations)
            start = time.perf_counter()
            http, replied, sent, rss = await _phase(server, conversations, PHASE_SECONDS, tag)
            assert await wait_processed(database_url, 0, timeout=120) == 0
            elapsed = time.perf_counter() - start
            results[conversations] = (
                http, replied, sent, rss, elapsed, _end_to_end(database_url, tag)
            )
    finally:
        server.stop()
    for conversations, (http, replied, sent, rss, elapsed, e2e) in results.items():
        mb = [r / 2**20 for _, r in rss]
        figures.append(
            f"load {conversations} conversations, {PHASE_SECONDS:.0f}s, {SENDERS} senders: "
            f"{sent} messages, {sent / elapsed:.1f} msg/s answered; "
            f"HTTP accept p50 {_pct(http, 50):.0f} p95 {_pct(http, 95):.0f} "
            f"p99 {_pct(http, 99):.0f} ms; customer sends->sees reply p50 "
            f"{_pct(replied, 50):.0f} p95 {_pct(replied, 95):.0f} p99 {_pct(replied, 99):.0f} ms; "
            f"accepted->reply in outbox (database clock) p50 {_pct(e2e, 50):.0f} "
            f"p95 {_pct(e2e, 95):.0f} p99 {_pct(e2e, 99):.0f} ms; "
            f"RSS MB over time {[round(m) for m in mb]} (mean {statistics.fmean(mb):.0f})"
        )
    end_small = results[100][3][-1][1] / 2**20
    end_large = results[10_000][3][-1][1] / 2**20
    figures.append(
        f"memory: RSS at end of 100-conversation phase {end_small:.1f} MB, "
        f"of 10,000-conversation phase {end_large:.1f} MB, difference "
        f"{end_large - end_small:+.1f} MB (limit 20 MB)"
    )
    assert abs(end_large - end_small) < 20
