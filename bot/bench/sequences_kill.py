"""A worker killed mid-tick: nothing sent twice, nothing lost (part of the sequences bench).

``contacts`` customers are enrolled in a one-step sequence on a Cloud API number, due
now; a real ``atiende worker`` process ticks and sends them to a fake Graph API that
counts every send per recipient. It is SIGKILLed while its tick runs, a new worker is
started, and the bench waits until everyone got the step, then counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg

PHONE_NUMBER_ID = "1065000000"

_SETUP = """
INSERT INTO sequences (id, name, channel, account, timezone, steps, on_reply, on_human,
                       on_opt_out, status)
VALUES (%(sid)s, 'kill', 'whatsapp_cloud', %(account)s, 'America/Mexico_City',
        %(steps)s, 'stop', 'pause', 'stop', 'active');
INSERT INTO contacts (id, phone_e164, name)
SELECT gen_random_uuid(), '+5256' || lpad(i::text, 8, '0'), 'Cliente ' || i
FROM generate_series(1, %(n)s) AS i;
INSERT INTO conversations (id, contact_id, channel, account, owner)
SELECT gen_random_uuid(), id, 'whatsapp_cloud', %(account)s, 'bot' FROM contacts
WHERE phone_e164 LIKE '+5256%%';
INSERT INTO sequence_enrollments (id, sequence_id, contact_id, conversation_id, phone_e164,
    name, fields, state, source, enrolled_at, enrolled_seq, next_step, steps_queued, due_at)
SELECT gen_random_uuid(), %(sid)s, c.contact_id, c.id, ct.phone_e164, ct.name, '{}', 'active',
       'api', now(), 0, 0, 0, now() - interval '1 second'
FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
WHERE c.account = %(account)s;
"""
_STEP = [{"delay_minutes": 0, "after": "previous", "text": "Hola {nombre}",
          "template": {"name": "seguimiento", "language": "es_MX", "params": ["nombre"]},
          "days": None, "start": None, "end": None}]


def setup_due(database_url: str, contacts: int) -> None:
    """``contacts`` customers who never wrote, in the one-step sequence 'kill' on a Cloud
    API number, all due now."""
    params = {"sid": uuid.uuid4(), "account": PHONE_NUMBER_ID, "steps": json.dumps(_STEP),
              "n": contacts}
    with psycopg.connect(database_url) as conn:
        for statement in _SETUP.split(";"):
            if statement.strip():
                conn.execute(statement, {k: v for k, v in params.items()
                                         if f"%({k})s" in statement})


class CountingGraph:
    """Answers ``POST /{phone-number-id}/messages`` like Meta, counting sends per recipient."""

    def __init__(self) -> None:
        self.sends: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v21.0"

    def start(self) -> None:
        graph = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"] or 0)))
                with graph._lock:
                    graph.sends[str(body.get("to"))] += 1
                    n = sum(graph.sends.values())
                data = json.dumps({"messages": [{"id": f"wamid.kill{n}"}]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def spawn_worker(
    database_url: str, redis_url: str, data_dir: Path, graph: str,
    *, send_claim_seconds: float | None = None,
) -> subprocess.Popen[bytes]:
    """A worker process on the fake Graph API; ``send_claim_seconds`` shortens how long a
    row left in ``sending`` by a dead process waits before the reconciler settles it."""
    env = {
        **os.environ, "ATIENDE_DATABASE_URL": database_url, "ATIENDE_REDIS_URL": redis_url,
        "ATIENDE_ENV": "test", "ATIENDE_DATA_DIR": str(data_dir),
        "ATIENDE_LOG_LEVEL": "WARNING", "ATIENDE_KNOWLEDGE__EMBEDDER": "hashing",
        "ATIENDE_STALLED_JOB_SECONDS": "2", "ATIENDE_SEQUENCES__TICK_SECONDS": "1",
        "ATIENDE_SEQUENCES__TICK_BATCH": "200", "ATIENDE_BLOCKING__CHECK_SECONDS": "0",
        "WHATSAPP_CLOUD_ACCESS_TOKEN": "bench", "WHATSAPP_CLOUD_APP_SECRET": "bench",
        "WHATSAPP_CLOUD_VERIFY_TOKEN": "bench", "WHATSAPP_CLOUD_GRAPH_URL": graph,
        "WHATSAPP_CLOUD_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
    }
    if send_claim_seconds is not None:
        env["ATIENDE_SEND_CLAIM_SECONDS"] = str(send_claim_seconds)
    return subprocess.Popen([sys.executable, "-m", "bot", "worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


KILL = "(SELECT id FROM sequences WHERE name = 'kill')"
QUEUED = f"SELECT count(*) FROM sequence_sends WHERE sequence_id = {KILL}"
SENT = ("SELECT count(*) FROM messages m JOIN sequence_sends s ON s.message_id = m.id "
        f"WHERE s.sequence_id = {KILL} AND m.status = 'sent'")
# a step whose sender died mid-send is not repeated (bot.conversation.outbox.INTERRUPTED)
INTERRUPTED = ("SELECT count(*) FROM messages m JOIN sequence_sends s ON s.message_id = m.id "
               f"WHERE s.sequence_id = {KILL} AND m.status = 'failed' "
               "AND m.error LIKE 'interrupted%'")


async def run_kill(database_url: str, redis_url: str, root: Path, *, contacts: int) -> str:
    graph = CountingGraph()
    graph.start()
    try:
        setup_due(database_url, contacts)
        worker = spawn_worker(database_url, redis_url, root / "w1", graph.url)
        started = time.perf_counter()
        try:
            while count(database_url, QUEUED) < contacts // 4:
                if time.perf_counter() - started > 300:
                    raise RuntimeError("the worker queued nothing in 5 minutes")
                await asyncio.sleep(0.02)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        queued_at_kill = count(database_url, QUEUED)
        sent_at_kill = sum(graph.sends.values())
        restarted = spawn_worker(database_url, redis_url, root / "w2", graph.url)
        try:
            recovered = await _until_all(database_url, contacts)
        finally:
            os.killpg(restarted.pid, signal.SIGTERM)
            restarted.wait(timeout=30)
        return _report(database_url, graph, contacts, queued_at_kill, sent_at_kill, recovered)
    finally:
        graph.stop()


async def _until_all(database_url: str, contacts: int) -> float:
    """Seconds until every step was sent (a row in flight at the kill is settled after
    the outbox's 120 s claim timeout: marked interrupted, not sent again)."""
    started = time.perf_counter()
    while count(database_url, SENT) + count(database_url, INTERRUPTED) < contacts:
        if time.perf_counter() - started > 400:
            break
        await asyncio.sleep(0.25)
    return time.perf_counter() - started


def _report(
    database_url: str, graph: CountingGraph, contacts: int, queued_at_kill: int,
    sent_at_kill: int, recovered: float,
) -> str:
    rows = count(database_url, "SELECT count(*) FROM messages WHERE author = 'sequence' "
                                "AND channel = 'whatsapp_cloud'")
    per_step = count(database_url, "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n "
                                    f"FROM sequence_sends WHERE sequence_id = {KILL} "
                                    "GROUP BY enrollment_id, step) s")
    completed = count(database_url, "SELECT count(*) FROM sequence_enrollments e JOIN "
                                     "sequences s ON s.id = e.sequence_id WHERE s.name = "
                                     "'kill' AND e.state = 'completed'")
    twice = sum(1 for n in graph.sends.values() if n > 1)
    return "\n".join([
        f"worker killed mid-tick (SIGKILL): {contacts} contacts due at once on a Cloud API "
        f"number; killed with {queued_at_kill} steps queued and {sent_at_kill} sent",
        f"  after a restart: {completed} enrollments completed, {rows} outbox rows "
        f"(most per step: {per_step}), {count(database_url, SENT)} sent in {recovered:.1f}s",
        f"  the fake Graph API got {sum(graph.sends.values())} sends for {len(graph.sends)} "
        f"recipients; recipients who got the step twice: {twice}; step in flight at the "
        f"kill, not repeated: {count(database_url, INTERRUPTED)}",
    ])
