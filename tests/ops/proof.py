"""Helpers of the reliability proofs: a live server in a subprocess, load, and the checks.

The checks read the record (PostgreSQL) directly, so they judge what the system
really kept, not what it said over HTTP.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

FULL = os.environ.get("ATIENDE_RELIABILITY") == "full"

# Messages the rules answer on their own (greetings, thanks): with an empty knowledge base a
# question would rightly hand the conversation to a person and silence the bot, and these
# proofs are about every message being stored once and answered once, in order.
TEXTS = [
    "hola", "holaa buenas tardes", "gracias!!", "buenos días", "hi", "muchas graciaaas",
    "buenas noches", "q onda", "thanks!", "mil gracias 🙏",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def phone(i: int) -> str:
    return f"+52155{40000000 + i:08d}"


@dataclass
class LiveServer:
    """``atiende serve`` (uvicorn, API + worker + reconciler) in its own process group."""

    database_url: str
    redis_url: str
    data_dir: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        env = {
            **os.environ,
            "ATIENDE_DATABASE_URL": self.database_url,
            "ATIENDE_REDIS_URL": self.redis_url,
            "ATIENDE_ENV": "test",
            "ATIENDE_HOST": "127.0.0.1",
            "ATIENDE_PORT": str(self.port),
            "ATIENDE_DATA_DIR": str(self.data_dir),
            "ATIENDE_STALLED_JOB_SECONDS": "2",
            "ATIENDE_RECONCILE_INTERVAL_SECONDS": "0.5",
            "ATIENDE_WORKER_CONCURRENCY": "4",
            "ATIENDE_LOG_LEVEL": "WARNING",
            "ATIENDE_LOAD_DEMO_KB": "false",
            **self.extra_env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"], env=env, cwd=str(Path(__file__).parents[2]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become healthy")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut or the OOM killer."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def rss_bytes(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


@dataclass(frozen=True)
class Delivery:
    phone: str
    text: str
    provider_id: str


def conversations_script(conversations: int, per_conversation: int, prefix: str) -> list[
    list[Delivery]
]:
    """Per conversation, its messages in the order the customer wrote them."""
    return [
        [
            Delivery(phone(c), TEXTS[(c + k) % len(TEXTS)], f"{prefix}-{c}-{k}")
            for k in range(per_conversation)
        ]
        for c in range(conversations)
    ]


def with_duplicates(
    deliveries: list[Delivery], *, share: float, rng: random.Random, window: int = 40
) -> list[Delivery]:
    """Add ``share`` of extra copies and shuffle inside a sliding window (late, out of order)."""
    extra = round(len(deliveries) * share / (1 - share))
    stream = deliveries + [rng.choice(deliveries) for _ in range(extra)]
    # Each copy lands near a random place; a window shuffle keeps the mess realistic.
    keyed = [(i + rng.uniform(0, window), d) for i, d in enumerate(stream)]
    rng.shuffle(keyed)
    keyed.sort(key=lambda pair: pair[0])
    return [d for _, d in keyed]


async def deliver(
    client: httpx.AsyncClient, d: Delivery, *, retry_for: float = 0.0
) -> dict[str, object]:
    """POST one delivery; with ``retry_for``, retry connection errors and 5xx like Meta does."""
    deadline = time.monotonic() + retry_for
    while True:
        try:
            r = await client.post(
                "/api/v1/simulator/messages",
                json={"from": d.phone, "text": d.text, "message_id": d.provider_id},
            )
            if r.status_code == 202:
                body: dict[str, object] = r.json()
                return body
            if r.status_code < 500:
                raise AssertionError(f"{r.status_code}: {r.text}")
        except (httpx.TransportError, httpx.RemoteProtocolError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("server kept failing")
        await asyncio.sleep(0.1)


async def wait_processed(database_url: str, expected: int, timeout: float) -> int:
    """Wait until ``expected`` inbound rows exist, all processed and their replies sent;
    return the backlog left at the timeout."""
    deadline = time.monotonic() + timeout
    left = -1
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            # done = every inbound processed AND every reply out of the outbox
            cur = await conn.execute(
                "SELECT count(*) FILTER (WHERE direction = 'in'), count(*) FILTER (WHERE "
                "(direction = 'in' AND status = 'received') OR "
                "(direction = 'out' AND status IN ('pending', 'sending'))) FROM messages"
            )
            row = await cur.fetchone()
            assert row is not None
            total, left = int(row[0]), int(row[1])
            if total >= expected and left == 0:
                return 0
            await asyncio.sleep(0.1)
    return left


@dataclass
class Verdict:
    """What the record shows about a set of customer messages."""

    stored: Counter[str]
    statuses: Counter[str]
    replies: Counter[str]
    reply_statuses: Counter[str]
    order_violations: list[str]

    def assert_exactly_once(self, expected_ids: set[str]) -> None:
        assert set(self.stored) == expected_ids, "a message was lost or invented"
        assert set(self.stored.values()) == {1}, "a message was stored twice"
        assert self.statuses == {"processed": len(expected_ids)}, self.statuses
        assert set(self.replies) == expected_ids, "a message got no reply"
        assert set(self.replies.values()) == {1}, "a message got more than one reply"
        assert self.reply_statuses == {"sent": len(expected_ids)}, self.reply_statuses
        assert not self.order_violations, self.order_violations[:5]


def verdict(database_url: str, script: list[list[Delivery]], *, written_order: bool) -> Verdict:
    """Read the record: stored once, processed, one reply each, and order per conversation.

    Order: within each conversation, inbound messages were processed in the order they
    were stored (``written_order``: the order the customer wrote them, when the sender
    delivered them one after another), and their replies reached the outbox in that order.
    """
    wanted = {d.provider_id for conv in script for d in conv}
    position = {d.provider_id: k for conv in script for k, d in enumerate(conv)}
    with psycopg.connect(database_url) as conn:
        inbound = conn.execute(
            "SELECT m.id, m.provider_message_id, m.status, m.conversation_id, m.seq, "
            "m.processed_at FROM messages m WHERE m.direction = 'in'"
        ).fetchall()
        outbound = conn.execute(
            "SELECT r.in_reply_to, r.status, r.conversation_id, r.seq FROM messages r "
            "WHERE r.direction = 'out' AND r.in_reply_to IS NOT NULL ORDER BY r.seq"
        ).fetchall()
    inbound = [row for row in inbound if row[1] in wanted]
    if not written_order:
        # Concurrent deliveries of one conversation have no written order: a row can take
        # its sequence number before a neighbour and commit after it. What must hold is
        # that replies follow the order in which the messages were processed.
        ranked = sorted(inbound, key=lambda row: (row[5] is None, row[5] or 0, row[4]))
        position = {row[1]: k for k, row in enumerate(ranked)}
    by_uuid = {row[0]: row[1] for row in inbound}
    stored = Counter(row[1] for row in inbound)
    statuses = Counter(row[2] for row in inbound)
    replies: Counter[str] = Counter()
    reply_statuses: Counter[str] = Counter()
    reply_order: dict[object, list[int]] = defaultdict(list)
    for in_reply_to, status, conversation_id, _seq in outbound:
        provider_id = by_uuid.get(in_reply_to)
        if provider_id is None:
            continue
        replies[provider_id] += 1
        reply_statuses[status] += 1
        reply_order[conversation_id].append(position[provider_id])
    processed_order: dict[object, list[tuple[object, int]]] = defaultdict(list)
    for _id, provider_id, _status, conversation_id, _seq, processed_at in inbound:
        processed_order[conversation_id].append((processed_at, position[provider_id]))
    violations = []
    for conversation_id, items in processed_order.items():
        if any(p is None for p, _ in items):
            continue
        ordered = [k for _, k in sorted(items, key=lambda item: item[0])]  # type: ignore[arg-type, return-value]
        if ordered != sorted(ordered):
            violations.append(f"processing order in {conversation_id}: {ordered}")
    for conversation_id, ks in reply_order.items():
        if ks != sorted(ks):
            violations.append(f"reply order in {conversation_id}: {ks}")
    return Verdict(stored, statuses, replies, reply_statuses, violations)


def dead_letters(database_url: str) -> int:
    """Failed jobs, plus conversations whose inbound batch failed (waiting to retry)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed') "
            "+ (SELECT count(*) FROM inbound_work WHERE attempts > 0)"
        ).fetchone()
    return int(row[0]) if row else 0
