"""``atiende bench erasure``: erase N customers (``atiende contacts erase --file``, the real
command, in its own process) while a steady load of customers writes to the bot, and
compare that load's latency with the same load on an idle system.

Runs on its own throwaway embedded PostgreSQL and Redis. Each erased customer has a
conversation of M messages, a voice note in the media folder, memory in Redis, a campaign
recipient, an active follow-up sequence enrollment with a step to do by hand, and (for
some) tickets, notes, labels, LLM call records and audit entries.
Latency is measured inside the database, as ``atiende bench pipeline`` does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psycopg

from bot.bench.pipeline import _latencies, _responder, _summary, _wait_all_replied
from bot.bench.traffic import GREETINGS
from bot.channels.simulation import SimulatorService
from bot.db import migrate
from bot.infra.embedded import EmbeddedServices
from bot.logs import configure_logging
from bot.messages import MessageKind, Turn
from bot.settings import Settings
from bot.wiring.runtime import Runtime

PREFIX = "+52558"  # the erased customers: +52558 0000001 …

SEED = """
INSERT INTO contacts (id, phone_e164, name, opted_out)
  SELECT gen_random_uuid(), %(prefix)s || lpad(i::text, 7, '0'), 'Cliente ' || i, i %% 7 = 0
  FROM generate_series(1, %(n)s) i;
INSERT INTO conversations (id, contact_id, channel, account, owner, owner_reason)
  SELECT gen_random_uuid(), id, 'whatsapp_cloud', 'bench', 'bot', 'no_answer'
  FROM contacts WHERE phone_e164 LIKE %(like)s;
INSERT INTO messages (id, conversation_id, direction, author, kind, channel, text, status,
                      intent, escalated, created_at, provider_message_id)
  SELECT gen_random_uuid(), c.id, CASE WHEN j %% 2 = 1 THEN 'in' ELSE 'out' END,
         CASE WHEN j %% 2 = 1 THEN 'customer' ELSE 'bot' END, 'text', 'whatsapp_cloud',
         'mensaje ' || j || ' sobre mi póliza, cliente ' || c.contact_id,
         CASE WHEN j %% 2 = 1 THEN 'processed' ELSE 'sent' END, 'greeting', j = 3,
         now() - make_interval(mins => 1000 - j), 'wamid.' || c.id || '.' || j
  FROM conversations c, generate_series(1, %(m)s) j WHERE c.account = 'bench';
INSERT INTO handoff_tickets (id, conversation_id, reason, opened_at, closed_at, outcome)
  SELECT gen_random_uuid(), id, 'no_answer', now() - interval '1 hour', now(), 'resolved'
  FROM conversations WHERE account = 'bench' AND get_byte(uuid_send(id), 0) %% 5 = 0;
INSERT INTO conversation_notes (id, conversation_id, author_id, text)
  SELECT gen_random_uuid(), id, gen_random_uuid(), 'nota sobre ' || contact_id
  FROM conversations WHERE account = 'bench' AND get_byte(uuid_send(id), 0) %% 10 = 0;
INSERT INTO conversation_labels (conversation_id, label)
  SELECT id, 'vip' FROM conversations
  WHERE account = 'bench' AND get_byte(uuid_send(id), 0) %% 10 = 0;
INSERT INTO llm_calls (purpose, model_group, outcome, latency_ms, error, conversation_id)
  SELECT 'answer', 'primary', 'timeout', 5000, 'eco ' || contact_id, id
  FROM conversations WHERE account = 'bench' AND get_byte(uuid_send(id), 0) %% 4 = 0;
INSERT INTO audit_log (actor_kind, action, target, details)
  SELECT 'user', 'conversation.labels', 'conversation:' || id, '{"labels": ["vip"]}'
  FROM conversations WHERE account = 'bench' AND get_byte(uuid_send(id), 0) %% 10 = 0;
INSERT INTO contact_lists (id, name, source, fields, total_rows, accepted, report)
  VALUES ('00000000-0000-0000-0000-00000000bec4', 'bench', 'csv_upload', '[]', %(n)s, %(n)s,
          '[]');
INSERT INTO campaigns (id, name, list_id, channel, account, variants, template_params,
                       schedule, pacing, status, burst_count, burst_size, events)
  VALUES ('00000000-0000-0000-0000-00000000bec5', 'bench',
          '00000000-0000-0000-0000-00000000bec4', 'whatsapp_cloud', 'bench', '["Hola"]', '[]',
          '{}', '{}', 'completed', 0, 0, '[]');
INSERT INTO campaign_recipients (id, campaign_id, position, phone_e164, name, fields, channel,
                                 account, status, contact_id)
  SELECT gen_random_uuid(), '00000000-0000-0000-0000-00000000bec5', row_number() OVER (),
         phone_e164, name, '{"poliza": "X"}', 'whatsapp_cloud', 'bench', 'queued', id
  FROM contacts WHERE phone_e164 LIKE %(like)s;
INSERT INTO sequences (id, name, channel, account, timezone, steps, on_reply, on_human,
                       on_opt_out, status)
  VALUES ('00000000-0000-0000-0000-00000000bec6', 'bench', 'whatsapp_cloud', 'bench',
          'America/Mexico_City', '[]', 'continue', 'pause', 'pause', 'active');
INSERT INTO sequence_enrollments (id, sequence_id, contact_id, conversation_id, phone_e164,
                                  name, fields, state, source, enrolled_at, enrolled_seq,
                                  next_step, steps_queued, due_at)
  SELECT gen_random_uuid(), '00000000-0000-0000-0000-00000000bec6', t.id, c.id, t.phone_e164,
         t.name, '{"poliza": "X"}', 'active', 'api', now() - interval '1 day', 0, 1, 1,
         now() + interval '1 day'
  FROM conversations c JOIN contacts t ON t.id = c.contact_id WHERE c.account = 'bench';
INSERT INTO sequence_sends (id, enrollment_id, sequence_id, conversation_id, step, kind, text,
                            reason, created_at)
  SELECT gen_random_uuid(), id, sequence_id, conversation_id, 0, 'manual', 'Hola ' || name,
         'outside_24h_window', now() - interval '1 day'
  FROM sequence_enrollments WHERE sequence_id = '00000000-0000-0000-0000-00000000bec6';
"""


async def _seed(runtime: Runtime, database_url: str, customers: int, messages: int) -> float:
    """The customers to erase, their media and memory; returns seconds spent."""
    start = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        params = {"prefix": PREFIX, "like": PREFIX + "%", "n": customers, "m": messages}
        for statement in SEED.split(";\n"):
            if statement.strip():
                await conn.execute(statement, params)
        cursor = await conn.execute(
            "SELECT id FROM conversations WHERE account = 'bench' ORDER BY id")
        conversations = [r[0] for r in await cursor.fetchall()]
    now = datetime.now().astimezone()
    for start_at in range(0, len(conversations), 1000):
        chunk = conversations[start_at:start_at + 1000]
        await runtime.memory.store_many({c: [Turn("customer", "hola", now)] for c in chunk})
    notes = []
    for conversation_id in conversations:
        ref = await runtime.media.save(_bytes(b"OggS" + os.urandom(2000)),
                                       kind=MessageKind.VOICE, mime_type="audio/ogg")
        notes.append((conversation_id, ref.key))
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO messages (id, conversation_id, direction, author, kind, channel, "
                "media, transcript, status) VALUES (gen_random_uuid(), %s, 'in', 'customer', "
                "'voice', 'whatsapp_cloud', jsonb_build_object('key', %s::text), "
                "'nota de voz', 'processed')", notes)
        await conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - start


async def _bytes(data: bytes):  # type: ignore[no-untyped-def]
    yield data


async def _load(sim: SimulatorService, rate: float, stop: asyncio.Event,
                label: Callable[[], str | None]) -> dict[str, int]:
    """Customers (other than the erased ones) writing at ``rate`` until ``stop``; each
    message's id says which phase it was sent in (``label()``: idle, busy, or None for
    the moments right after a switch, not counted)."""
    tasks = []
    counts: dict[str, int] = {}
    begin = time.perf_counter()
    i = 0
    while not stop.is_set():
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        phase = label() or "switch"
        counts[phase] = counts.get(phase, 0) + 1
        tasks.append(asyncio.create_task(sim.send(
            phone=f"+52155{60000000 + i % 300:08d}", text=GREETINGS[i % len(GREETINGS)],
            name=None, message_id=f"{phase}-{i}")))
        i += 1
    await asyncio.gather(*tasks)
    return counts


class Alternator:
    """Runs the eraser process in windows: working (SIGCONT) then stopped (SIGSTOP), so
    the load's "busy" and "idle" messages share the same machine, whatever else runs on
    it meanwhile. The first ``margin`` seconds of each window count for neither."""

    def __init__(self, process: subprocess.Popen[bytes], window: float, margin: float) -> None:
        self._process = process
        self._window = window
        self._margin = margin
        self._phase = "busy"
        self._since = time.perf_counter()
        self.busy_seconds = 0.0

    def label(self) -> str | None:
        if time.perf_counter() - self._since < self._margin:
            return None
        return self._phase

    async def run(self, done: asyncio.Event) -> None:
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), self._window)
            except TimeoutError:
                pass
            now = time.perf_counter()
            if self._phase == "busy":
                self.busy_seconds += now - self._since
            if done.is_set():
                return
            self._phase = "idle" if self._phase == "busy" else "busy"
            self._process.send_signal(signal.SIGSTOP if self._phase == "idle"
                                      else signal.SIGCONT)
            self._since = now


def _eraser(phones: Path, services: tuple[str, str], data_dir: Path, batch: int,
            pause: float, yield_ratio: float) -> subprocess.Popen[bytes]:
    database_url, redis_url = services
    env = {**os.environ, "ATIENDE_DATABASE_URL": database_url, "ATIENDE_REDIS_URL": redis_url,
           "ATIENDE_DATA_DIR": str(data_dir), "ATIENDE_LOG_LEVEL": "WARNING",
           "ATIENDE_PRIVACY__ERASE_BATCH": str(batch),
           "ATIENDE_PRIVACY__BATCH_PAUSE_SECONDS": str(pause),
           "ATIENDE_PRIVACY__ERASE_YIELD": str(yield_ratio),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "contacts", "erase", "--yes", "--file", str(phones)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def run_erasure_bench(
    settings: Settings, *, customers: int, messages: int, rate: float, batch: int,
    pause: float, yield_ratio: float,
) -> str:
    root = Path(tempfile.mkdtemp(prefix="atiende-bench-erasure-"))
    services = EmbeddedServices(root / "services", ephemeral=True)
    database_url, redis_url = services.start()
    try:
        migrate(database_url)
        configure_logging("WARNING", json=True)
        data_dir = root / "data"
        bench = settings.model_copy(update={
            "data_dir": data_dir, "log_level": "WARNING",
            "speech": settings.speech.model_copy(update={"warm_at_start": False})})
        runtime = await Runtime.create(bench, database_url=database_url, redis_url=redis_url,
                                       responder=_responder(settings, "rules"))
        try:
            runtime.start_worker()
            return await _measure(runtime, (database_url, redis_url), data_dir, customers,
                                  messages, rate, (batch, pause, yield_ratio))
        finally:
            await runtime.close()
    finally:
        services.stop()


async def _measure(runtime: Runtime, services: tuple[str, str], data_dir: Path,
                   customers: int, messages: int, rate: float,
                   pacing: tuple[int, float, float]) -> str:
    database_url = services[0]
    seeded = await _seed(runtime, database_url, customers, messages)
    sim = SimulatorService(sessions=runtime.sessions, ingestor=runtime.ingestor,
                           events=runtime.events, clock=runtime.clock, default_region="MX")
    await sim.send(phone="+5215560000000", text="hola", name=None, message_id="warm-0")
    await _wait_all_replied(database_url)
    phones = data_dir / "erase.txt"
    phones.write_text("\n".join(f"{PREFIX}{i:07d}" for i in range(1, customers + 1)) + "\n")

    done = asyncio.Event()
    eraser = _eraser(phones, services, data_dir, *pacing)
    started = time.perf_counter()
    alternator = Alternator(eraser, window=5.0, margin=0.5)

    async def wait_eraser() -> tuple[bytes, bytes]:
        out, err = await asyncio.to_thread(eraser.communicate)
        done.set()
        return out, err

    waiter = asyncio.create_task(wait_eraser())
    switching = asyncio.create_task(alternator.run(done))
    sent = await _load(sim, rate, done, alternator.label)
    out, err = await waiter
    await switching
    elapsed = time.perf_counter() - started
    await _wait_all_replied(database_url)
    if eraser.returncode != 0:
        raise RuntimeError(f"the erasure failed: {err.decode()[-2000:]}")
    left = await _left(database_url)
    idle, busy = await _latencies(database_url, "idle-"), await _latencies(database_url, "busy-")
    ratio = _p95(busy) / _p95(idle)
    batch, pause, yield_ratio = pacing
    working = alternator.busy_seconds
    return "\n".join([
        f"erasure: {customers} customers x {messages} messages (+1 voice note each, memory, "
        "tickets/notes/labels/LLM calls/audit for some, a campaign recipient and a sequence "
        "enrollment each); "
        f"seeded in {seeded:.0f} s",
        f"  erased in {working:.1f} s of work ({customers / working:.0f} customers/s, "
        f"{customers * (messages + 1) / working:.0f} messages/s; {elapsed:.0f} s wall, "
        f"stopped every other 5 s), batches of {batch}, pause {pause} s + {yield_ratio} x "
        f"the batch's time: {out.decode().strip().splitlines()[-1]}",
        f"  left after: {left}{_pending(err)}",
        f"  load {rate:.0f} messages/s while the eraser is stopped (n={len(idle)}) ms: "
        f"{_summary(idle)}",
        f"  load {rate:.0f} messages/s while it erases (n={len(busy)}) ms: {_summary(busy)}",
        f"  p95 while erasing / idle: {ratio:.2f} (target <= 1.20); "
        f"messages sent: {sent}",
    ])


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


async def _left(database_url: str) -> str:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT (SELECT count(*) FROM contacts WHERE phone_e164 LIKE %(like)s), "
            "(SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            " WHERE c.account = 'bench' AND (m.text IS NOT NULL OR m.media IS NOT NULL)), "
            "(SELECT count(*) FROM privacy_erasures WHERE state = 'objects'), "
            "(SELECT count(*) FROM sequence_enrollments WHERE phone_e164 LIKE %(like)s "
            " OR state = 'active')",
            {"like": PREFIX + "%"})
        row = await cursor.fetchone()
    assert row is not None
    return (f"{row[0]} contacts with their number, {row[1]} messages with text or media, "
            f"{row[2]} unfinished erasures, {row[3]} sequence enrollments active or with "
            "their number")


def _pending(err: bytes) -> str:
    """Why erasures were left unfinished (their objects, for the worker to finish)."""
    lines = [x for x in err.decode(errors="replace").splitlines() if "objects_pending" in x]
    return f" ({len(lines)} objects_pending warnings, first: {lines[0][:300]})" if lines else ""
