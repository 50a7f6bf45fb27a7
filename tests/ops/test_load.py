"""Load over HTTP for several minutes (``make reliability`` only): throughput, latency,
and memory that does not grow with the number of conversations.

The server is ``atiende serve`` (API + worker in one uvicorn process) on this 2-core
machine. Two phases of equal length: customers drawn from 100 phones, then from
10,000 phones. The server's RSS is sampled every few seconds; after a warm-up its
end-of-phase values must differ by less than 20 MB.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.channels.conftest import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    envelope,
    sign,
    text_message,
)
from tests.channels.fake_graph import FakeGraph
from tests.ops.proof import FULL, TEXTS, LiveServer, phone, wait_processed

PHASE_SECONDS = float(os.environ.get("ATIENDE_LOAD_PHASE_SECONDS", "120"))
SENDERS = 8


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


Send = Callable[[httpx.AsyncClient, int, int, str], Awaitable[tuple[float, float]]]


async def _simulator_send(
    client: httpx.AsyncClient, index: int, n: int, tag: str
) -> tuple[float, float]:
    """One customer message over the HTTP simulator; (accepted ms, reply seen ms)."""
    body = {"from": phone(index), "text": TEXTS[n % len(TEXTS)], "message_id": f"{tag}-{n}"}
    t0 = time.perf_counter()
    r = await client.post("/api/v1/simulator/messages", json=body)
    accepted = (time.perf_counter() - t0) * 1000
    assert r.status_code == 202, r.text
    # closed loop on the answer: a customer waits for the reply before writing
    # again, so the offered load follows what the machine can answer
    done = await client.get(
        f"/api/v1/simulator/messages/{r.json()['message_id']}", params={"wait": 30}
    )
    assert done.status_code == 200 and done.json()["status"] == "processed"
    return accepted, (time.perf_counter() - t0) * 1000


async def _phase(
    server: LiveServer, conversations: int, seconds: float, tag: str,
    send: Send = _simulator_send,
) -> tuple[list[float], list[float], int, list[tuple[float, int]]]:
    latencies: list[float] = []
    replied: list[float] = []
    rss: list[tuple[float, int]] = []
    stop = time.monotonic() + seconds
    counter = 0
    # each sender writes from its own phones, so a reply is never mistaken for another's
    per_sender = max(1, conversations // SENDERS)

    async def sender(client: httpx.AsyncClient, k: int) -> None:
        nonlocal counter
        mine = 0
        while time.monotonic() < stop:
            counter += 1
            mine += 1
            index = k + SENDERS * ((mine * 7919) % per_sender)
            accepted, seen = await send(client, index, counter, tag)
            latencies.append(accepted)
            replied.append(seen)

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
            ("%" + tag + "-%",),
        ).fetchall()
    return [float(r[0]) for r in rows]


async def _sustained(
    server: LiveServer, database_url: str, figures: list[str], *, via: str,
    send: Send = _simulator_send,
) -> None:
    """Warm up, then 100 and 10,000 conversations for PHASE_SECONDS each; figures, memory."""
    await _phase(server, 100, min(20.0, PHASE_SECONDS / 4), f"{via}warm", send)  # warm-up
    assert await wait_processed(database_url, 0, timeout=300) == 0
    results = {}
    for conversations in (100, 10_000):
        tag = f"{via}c{conversations}"
        if conversations > 100:
            await asyncio.to_thread(_seed_conversations, database_url, conversations)
        start = time.perf_counter()
        http, replied, sent, rss = await _phase(server, conversations, PHASE_SECONDS, tag, send)
        assert await wait_processed(database_url, 0, timeout=120) == 0
        elapsed = time.perf_counter() - start
        results[conversations] = (
            http, replied, sent, rss, elapsed, _end_to_end(database_url, tag)
        )
    for conversations, (http, replied, sent, rss, elapsed, e2e) in results.items():
        mb = [r / 2**20 for _, r in rss]
        figures.append(
            f"load via {via}, {conversations} conversations, {PHASE_SECONDS:.0f}s, "
            f"{SENDERS} senders: {sent} messages, {sent / elapsed:.1f} msg/s answered; "
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
        f"memory via {via}: RSS at end of 100-conversation phase {end_small:.1f} MB, "
        f"of 10,000-conversation phase {end_large:.1f} MB, difference "
        f"{end_large - end_small:+.1f} MB (limit 20 MB)"
    )
    assert abs(end_large - end_small) < 20


@pytest.mark.skipif(not FULL, reason="minutes long: run by `make reliability`")
async def test_sustained_load_memory_flat_100_vs_10000_conversations(
    database_url: str, redis_url: str, tmp_path: Path, figures: list[str]
) -> None:
    server = LiveServer(
        database_url, redis_url, tmp_path, extra_env={"ATIENDE_WORKER_CONCURRENCY": "8"}
    )
    server.start()
    try:
        await _sustained(server, database_url, figures, via="simulator")
    finally:
        server.stop()


class RepliesGraph(FakeGraph):
    """The channel tests' fake Graph API, counting the replies sent to each customer."""

    def __init__(self) -> None:
        super().__init__()
        self.replied: dict[str, int] = {}
        self._lock = threading.Lock()

    def answer(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        with self._lock:  # one request at a time: a fake, and fast
            super().answer(handler, method)
            last = self.requests.pop()  # a long run keeps only the counts
            if method == "POST" and last.path.endswith("/messages"):
                to = str((last.body or {}).get("to", ""))[-8:]
                self.replied[to] = self.replied.get(to, 0) + 1


def _cloud_send(graph: RepliesGraph) -> Send:
    async def send(
        client: httpx.AsyncClient, index: int, n: int, tag: str
    ) -> tuple[float, float]:
        """One customer message as Meta delivers it: a signed webhook POST; the reply is
        seen when it reaches the (fake) Graph API."""
        wa_id = phone(index).removeprefix("+")
        key = wa_id[-8:]
        expected = graph.replied.get(key, 0) + 1
        payload = envelope(messages=[text_message(TEXTS[n % len(TEXTS)], f"wamid.{tag}-{n}",
                                                  wa_id=wa_id)], wa_id=wa_id)
        body = json.dumps(payload).encode()
        t0 = time.perf_counter()
        r = await client.post(
            "/webhooks/whatsapp-cloud", content=body,
            headers={"X-Hub-Signature-256": sign(body), "content-type": "application/json"},
        )
        accepted = (time.perf_counter() - t0) * 1000
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 30
        while graph.replied.get(key, 0) < expected:
            assert time.monotonic() < deadline, f"no reply to {wa_id} within 30 s"
            await asyncio.sleep(0.005)
        return accepted, (time.perf_counter() - t0) * 1000

    return send


@pytest.mark.skipif(not FULL, reason="minutes long: run by `make reliability`")
async def test_sustained_load_over_the_cloud_api_webhook(
    database_url: str, redis_url: str, tmp_path: Path, figures: list[str]
) -> None:
    graph = RepliesGraph()
    graph.start()
    server = LiveServer(database_url, redis_url, tmp_path, extra_env={
        "ATIENDE_WORKER_CONCURRENCY": "8",
        "WHATSAPP_CLOUD_VERIFY_TOKEN": VERIFY_TOKEN, "WHATSAPP_CLOUD_APP_SECRET": APP_SECRET,
        "WHATSAPP_CLOUD_ACCESS_TOKEN": "EAAG-load-token",
        "WHATSAPP_CLOUD_PHONE_NUMBER_ID": PHONE_NUMBER_ID, "WHATSAPP_CLOUD_GRAPH_URL": graph.url,
    })
    server.start()
    try:
        await _sustained(server, database_url, figures, via="cloud-api", send=_cloud_send(graph))
    finally:
        server.stop()
        graph.stop()
