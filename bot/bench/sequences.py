"""``atiende sequences bench``: follow-up sequences at 100,000 enrolled contacts.

Runs on its own throwaway embedded PostgreSQL and Redis and prints:

1. the tick at steady state: 100,000 active enrollments whose next step falls due spread
   over a day, a tick every 10 simulated seconds (fake clock), each due step queued and
   sent through the outbox to the simulator; the find-and-queue transaction is timed;
2. the window opening: ``--burst`` enrollments due at once (a step's allowed hours open
   at 09:00); each batch transaction timed (the sender is emulated by one UPDATE here);
3. a worker killed mid-tick (``bot.bench.sequences_kill``): a real worker process sends
   through a counting fake Graph API, is SIGKILLed while its tick runs, and restarts;
4. blocked-contact detection in a simulated outage (``bot.bench.sequences_outage``).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import text

from bot.bench.sequences_kill import run_kill
from bot.bench.sequences_outage import run_outage
from bot.clock import FakeClock
from bot.db import migrate
from bot.infra.embedded import EmbeddedServices
from bot.logs import configure_logging
from bot.sequences import SequenceDraft, Step
from bot.settings import Settings
from bot.settings.sequences import BlockingConfig, SequencesConfig
from bot.wiring.runtime import Runtime

START = datetime(2027, 1, 4, 15, 0, tzinfo=UTC)  # a Monday, 09:00 in Mexico City
DAY = 24 * 60

_CONTACTS = text(
    """
    INSERT INTO contacts (id, phone_e164, name)
    SELECT gen_random_uuid(), '+5255' || lpad((:offset + i)::text, 8, '0'), 'Cliente ' || i
    FROM generate_series(1, :n) AS i
    """
)
_CONVERSATIONS = text(
    """
    INSERT INTO conversations (id, contact_id, channel, account, owner)
    SELECT gen_random_uuid(), c.id, 'simulator', 'demo', 'bot' FROM contacts c
    WHERE c.phone_e164 LIKE '+5255%' AND NOT EXISTS (
      SELECT 1 FROM conversations v WHERE v.contact_id = c.id)
    """
)
# Every enrollment already got step 1 (a delivered message, its send row); step 2 falls
# due somewhere in the next ``spread`` minutes; one in ten customers has replied.
_ENROLL = text(
    """
    WITH e AS (
      INSERT INTO sequence_enrollments (id, sequence_id, contact_id, conversation_id,
          phone_e164, name, fields, state, source, enrolled_at, enrolled_seq, next_step,
          steps_queued, due_at, last_step_at)
      SELECT gen_random_uuid(), :sid, c.contact_id, c.id, ct.phone_e164, ct.name, '{}',
             'active', 'api', :at - interval '1 day', 0, 1, 1,
             :at + (random() * :spread) * interval '1 minute', :at - interval '1 day'
      FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
      WHERE ct.phone_e164 LIKE '+5255%'
      RETURNING id, sequence_id, conversation_id
    ), m AS (
      INSERT INTO messages (id, conversation_id, direction, author, kind, channel, text,
                            status, provider_message_id, sent_at)
      SELECT gen_random_uuid(), e.conversation_id, 'out', 'sequence', 'text', 'simulator',
             'Paso 1', 'delivered', 'bench-' || e.id, now()
      FROM e RETURNING id, conversation_id
    )
    INSERT INTO sequence_sends (id, enrollment_id, sequence_id, conversation_id, step, kind,
                                message_id, created_at)
    SELECT gen_random_uuid(), e.id, e.sequence_id, e.conversation_id, 0, 'message', m.id,
           :at - interval '1 day'
    FROM e JOIN m ON m.conversation_id = e.conversation_id
    """
)
_REPLIES = text(
    """
    INSERT INTO messages (id, conversation_id, direction, author, kind, channel, text, status)
    SELECT gen_random_uuid(), id, 'in', 'customer', 'text', 'simulator', 'gracias',
           'processed'
    FROM conversations WHERE random() < 0.1
    """
)
_SENDER = text(
    "UPDATE messages SET status = 'sent', sent_at = now() "
    "WHERE status = 'pending' AND direction = 'out' AND author = 'sequence'"
)
_BURST = text(
    """
    UPDATE sequence_enrollments SET due_at = :at
    WHERE id IN (SELECT id FROM sequence_enrollments WHERE state = 'active'
                 ORDER BY due_at LIMIT :n)
    """
)


def _fresh_database(url: str, name: str) -> str:
    """A new, migrated database on the same server (``url`` names the default one)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, query = url.split("?", 1)
    fresh = f"{base.rsplit('/', 1)[0]}/{name}?{query}"
    migrate(fresh)
    return fresh


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def _ms(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"p50 {statistics.median(ms):.1f}  p95 {_pct(ms, 0.95):.1f}  "
            f"max {max(ms):.1f} ms (n={len(ms)})")


async def run_sequence_bench(
    settings: Settings, *, contacts: int, ticks: int, burst: int, kill_contacts: int,
    outage_contacts: int,
) -> str:
    root = Path(tempfile.mkdtemp(prefix="atiende-bench-seq-"))
    services = EmbeddedServices(root, ephemeral=True)
    database_url, redis_url = services.start()
    try:
        migrate(database_url)
        configure_logging("WARNING", json=True)
        quiet = settings.model_copy(update={
            "log_level": "WARNING", "sequences": SequencesConfig(tick_seconds=0),
            "blocking": BlockingConfig(check_seconds=0, channels=("simulator",)),
        })
        # each part on its own database: one's leftovers do not slow the next
        urls = [_fresh_database(database_url, f"bench_{i}") for i in range(3)]
        parts: list[Callable[[], Awaitable[str]]] = [
            lambda: _ticks(quiet, urls[0], redis_url, contacts, ticks, burst),
            lambda: run_kill(urls[1], redis_url, root, contacts=kill_contacts),
            lambda: run_outage(quiet, urls[2], redis_url, contacts=outage_contacts),
        ]
        lines = []
        for part in parts:
            started = time.perf_counter()
            lines.append(await part())
            lines.append(f"  ({time.perf_counter() - started:.0f}s)")
        return "\n".join(lines)
    finally:
        services.stop()


async def _ticks(
    settings: Settings, database_url: str, redis_url: str, contacts: int, ticks: int,
    burst: int,
) -> str:
    clock = FakeClock(START)
    runtime = await Runtime.create(settings, database_url=database_url, redis_url=redis_url,
                                   clock=clock)
    try:
        steps = (Step(delay_minutes=0, text="Hola {nombre}, ¿viste la cotización?"),
                 Step(delay_minutes=DAY, text="¿Te ayudo con la cotización, {nombre}?"),
                 Step(delay_minutes=2 * DAY, text="Último aviso de tu cotización."))
        sequence = await runtime.sequences.create(
            SequenceDraft(name="bench", steps=steps), by=None)
        started = time.perf_counter()
        async with runtime.sessions() as session, session.begin():
            await session.execute(_CONTACTS, {"n": contacts, "offset": 10_000_000})
            await session.execute(_CONVERSATIONS)
            await session.execute(_ENROLL, {"sid": sequence.id, "at": START, "spread": DAY})
            await session.execute(_REPLIES)
        async with runtime.sessions() as session:
            await session.execute(text("ANALYZE"))
        setup = time.perf_counter() - started
        steady, sent, outcomes = await _steady(runtime, clock, ticks)
        per_batch, drain = await _burst(runtime, clock, burst)
        plan = await _plan(runtime, clock)
    finally:
        await runtime.close()
    return "\n".join([
        f"sequences: {contacts} active enrollments (set up in {setup:.1f}s), next steps due "
        f"over 24 h, 10% of customers replied (stop on reply)",
        f"steady state: {ticks} ticks, one every 10 simulated seconds: {sum(outcomes.values())} "
        f"due steps ({outcomes.get('send', 0)} queued, {outcomes.get('stop', 0)} stopped by a "
        f"reply), {sent} sent to the simulator",
        f"  tick find-and-queue transaction: {_ms(steady)}",
        f"window opening: {burst} steps due at once, batches of "
        f"{settings.sequences.tick_batch}: {_ms(per_batch)}; "
        f"all queued in {drain:.2f}s",
        f"  due-step query plan: {plan}",
    ])


async def _steady(
    runtime: Runtime, clock: FakeClock, ticks: int
) -> tuple[list[float], int, dict[str, int]]:
    timings: list[float] = []
    outcomes: dict[str, int] = {}
    sent = 0
    for _ in range(ticks):
        clock.advance(seconds=10)
        result = await runtime.sequence_ticker.tick()
        timings += result.batches
        for key, value in (("send", result.queued), ("stop", result.stopped),
                           ("wait", result.waiting)):
            outcomes[key] = outcomes.get(key, 0) + value
        sent += result.queued
    return timings, sent, outcomes


async def _burst(runtime: Runtime, clock: FakeClock, burst: int) -> tuple[list[float], float]:
    clock.advance(hours=1)
    async with runtime.sessions() as session, session.begin():
        await session.execute(_BURST, {"at": clock(), "n": burst})
    timings: list[float] = []
    started = time.perf_counter()
    while True:
        batch = await runtime.sequence_ticker.run_batch()
        timings.append(batch.seconds)
        async with runtime.sessions() as session, session.begin():
            await session.execute(_SENDER)  # what the outbox would do meanwhile
        if batch.found < runtime.settings.sequences.tick_batch:
            break
    return timings, time.perf_counter() - started


async def _plan(runtime: Runtime, clock: FakeClock) -> str:
    async with runtime.sessions() as session:
        rows = (await session.execute(text(
            "EXPLAIN (FORMAT JSON) SELECT id FROM sequence_enrollments "
            "WHERE state = 'active' AND due_at <= :now ORDER BY due_at LIMIT 200 "
            "FOR UPDATE SKIP LOCKED"), {"now": clock()})).scalar_one()
    plan = rows[0]["Plan"] if isinstance(rows, list) else json.loads(rows)[0]["Plan"]
    names = []
    node = plan
    while node:
        names.append(f"{node['Node Type']}" + (f" on {node['Index Name']}"
                                               if "Index Name" in node else ""))
        node = (node.get("Plans") or [None])[0]
    return " > ".join(names)

