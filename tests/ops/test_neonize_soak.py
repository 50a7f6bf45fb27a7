"""Soak: 5 numbers on the real neonize, offline, through the supervisors of one worker:
every session dials, fails and is stopped and restarted; a chaos task kill -9s client
processes at random (in the middle of importing, of preparing the store under its lock,
of dialling). ``make test`` runs a few cycles per number; ``make reliability``
(``ATIENDE_RELIABILITY=full``) runs 200 per number.

Checked all along: no number stays ``connecting``, no number holds more store
connections than the documented bound; at the end: every client process gone, every store
connection closed, the worker alive and still answering.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.channels.numbers import NumberRecord
from bot.channels.session_process import ProcessSession
from bot.channels.supervisor import Session
from bot.channels.wa_store import application_name
from bot.wiring.runtime import Runtime
from tests.channels.real_store import RealStore, provisioned_store, real_settings
from tests.conftest import app_client

pytestmark = pytest.mark.neonize_real

FULL = os.environ.get("ATIENDE_RELIABILITY") == "full"
CYCLES = 200 if FULL else 6  # sessions per number
NUMBERS = [f"+5255111100{i:02d}" for i in range(5)]
RESUMED = {NUMBERS[0]: "5215511110000:4@s.whatsapp.net",
           NUMBERS[1]: "5215511110001:2@s.whatsapp.net"}
# A running client holds 2 store connections (measured); the previous process's backends
# may still be closing for a moment when the next one connects.
PER_NUMBER_BOUND = 2 * 2
STUCK_SECONDS = 30.0


async def until(
    check: Callable[[], Awaitable[bool]], timeout: float, why: Callable[[], object],
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, f"{check.__name__} not reached: {why()}"
        await asyncio.sleep(0.1)


async def number_state(rt: Runtime, account: str) -> str:
    record = await rt.whatsapp.book.get(account)
    assert record is not None
    return record.state


@pytest.fixture
async def real_store(database_url: str) -> AsyncIterator[RealStore]:
    async with provisioned_store(database_url) as store:
        yield store


class Counting:
    """The production session factory, remembering every session it made."""

    def __init__(self, store: RealStore) -> None:
        self.store = store
        self.made: dict[str, list[ProcessSession]] = defaultdict(list)

    def __call__(self, record: NumberRecord) -> Session:
        session = self.store.session(record.account, record.jid)
        self.made[record.account].append(session)
        return session

    def done(self) -> bool:
        return all(len(self.made[a]) >= CYCLES for a in NUMBERS)


async def chaos(made: Counting, kills: list[int], rng: random.Random) -> None:
    while True:
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        live = [s for sessions in made.made.values() for s in sessions[-1:] if s.running]
        if live:
            victim = rng.choice(live)
            if victim.pid is not None and victim.running:
                os.kill(victim.pid, signal.SIGKILL)
                kills.append(victim.pid)


async def watch(rt: Runtime, store: RealStore, peaks: dict[str, int]) -> None:
    """No number stuck in ``connecting``; store connections per number within the bound."""
    while True:
        now = datetime.now(UTC)
        for record in await rt.whatsapp.book.all():
            if record.state == "connecting" and record.updated_at is not None:
                assert (now - record.updated_at).total_seconds() < STUCK_SECONDS, record
        for name, count in (await asyncio.to_thread(store.connections)).items():
            peaks[name] = max(peaks.get(name, 0), count)
        await asyncio.sleep(0.2)


async def _cycle_then_stop(
    rt: Runtime, made: Counting, helpers: list[asyncio.Task[None]],
) -> float:
    """Enable the numbers, let them cycle ``CYCLES`` sessions each, disable them; seconds."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    book = rt.whatsapp.book
    for account in NUMBERS:
        await book.add(account, None)
        if account in RESUMED:
            await book.update(account, jid=RESUMED[account])
        await book.request_link(account, pairing_phone=None)

    async def cycled() -> bool:
        for helper in helpers:
            if helper.done():
                helper.result()  # a failed check ends the soak with its reason
        return made.done()

    await until(cycled, CYCLES * 30, lambda: {a: len(v) for a, v in made.made.items()})
    elapsed = loop.time() - started
    for account in NUMBERS:
        await book.disable(account)
    pool = rt.whatsapp.pool
    assert pool is not None
    seen: dict[str, str] = {}

    async def all_stopped() -> bool:
        for account in NUMBERS:
            seen[account] = await number_state(rt, account)
        return set(seen.values()) == {"stopped"} and not pool.running()

    await until(all_stopped, 60, lambda: (seen, pool.running()))
    return elapsed


async def test_five_numbers_start_stop_crash_cycles(
    tmp_path: Path, database_url: str, redis_url: str, real_store: RealStore,
    figures: list[str],
) -> None:
    first = real_store.session(NUMBERS[4])  # whatsmeow's tables, then the resumable devices
    await first.start()
    await asyncio.wait_for(first.events.get(), 30)
    await first.stop()
    for jid in RESUMED.values():
        real_store.add_device(jid)
    made = Counting(real_store)
    settings = real_settings(tmp_path, restart_cap=1_000_000, backoff_initial_seconds=0.1,
                             backoff_max_seconds=0.2)
    rt = await Runtime.create(settings, database_url=database_url, redis_url=redis_url,
                              whatsapp_sessions=made)
    rt.start_worker()
    kills: list[int] = []
    peaks: dict[str, int] = {}
    helpers = [asyncio.create_task(chaos(made, kills, random.Random(22))),
               asyncio.create_task(watch(rt, real_store, peaks))]
    try:
        elapsed = await _cycle_then_stop(rt, made, helpers)
    finally:
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
    try:
        async with app_client(rt) as client:  # the worker's process still serves
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await rt.close()
    sessions = [s for per in made.made.values() for s in per]
    assert not [s for s in sessions if s.running]  # no client process left behind
    crashed = [s for s in sessions if s.exit_code == -signal.SIGKILL]
    assert len(crashed) >= 1 and len(kills) >= len(crashed)
    assert await real_store.all_closed()  # every store connection closed
    for account in NUMBERS:
        assert peaks.get(application_name(account), 0) <= PER_NUMBER_BOUND, peaks
        if account in RESUMED:  # still linked: never mistaken for an unlinked device
            assert await _jid(real_store, account) == RESUMED[account]
    figures.append(
        f"neonize soak: {len(NUMBERS)} numbers, {len(sessions)} client processes in "
        f"{elapsed:.0f} s ({len(sessions) - len(crashed)} started, failed to dial, stopped; "
        f"{len(crashed)} killed with SIGKILL mid-way); peak store connections per number "
        f"{max(peaks.values(), default=0)}; 0 left open, 0 processes left, none stuck "
        "connecting")


async def _jid(store: RealStore, account: str) -> str | None:
    with store.admin() as conn:
        row = conn.execute("SELECT jid FROM whatsapp_numbers WHERE account = %s",
                           (account,)).fetchone()
    return None if row is None else row[0]
