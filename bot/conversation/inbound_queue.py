"""The inbound work list: which conversations have stored messages waiting, on PostgreSQL.

A conversation with waiting messages has one row in ``inbound_work``. The statement
that stores a message adds the row (or bumps its version) in the same transaction, so a
stored message always has its work and a rolled-back one never does; a new row also
sends a NOTIFY, which wakes a dispatcher at once (it polls as well, so a lost
notification costs a second, never a message).

A dispatcher claims waiting conversations in batches (``FOR UPDATE SKIP LOCKED``) with
a lease, and hands each batch to the pipeline. A conversation is claimed by one
dispatcher at a time, so its messages are processed strictly in order; different
conversations run side by side. After the batch:

- done, and no message arrived meanwhile (same version): the row is deleted;
- a message arrived meanwhile (version moved): the row is released and claimed again;
- failed: released with exponential backoff (the pipeline parks a message that keeps
  failing, so the conversation moves on; a conversation that keeps failing for another
  reason stays here, counted in ``atiende_queue_depth{status="retrying"}``).

Leases are renewed while a batch runs; a dispatcher that dies (kill -9) leaves leases
that expire after ``lease_seconds``, and its conversations are claimed again. The
pipeline's commit only marks messages still unprocessed, so a double is answered once.

Compared with one procrastinate job per message this is one row upsert per message and
a few statements per batch: no job insert, event rows, fetch function or job delete.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.db import AutocommitPool, DatabaseError, DriverConnection, notifications
from bot.logs import get_logger

log = get_logger("atiende.inbound")

CHANNEL = "atiende_inbound"

# Drains several conversations; returns (messages processed, failure per conversation).
BatchHandler = Callable[
    [list[uuid.UUID]], Awaitable[tuple[int, dict[uuid.UUID, Exception]]]
]

_CLAIM_SQL = """
WITH picked AS (
    SELECT conversation_id FROM inbound_work
    WHERE (claimed_until IS NULL OR claimed_until < now()) AND not_before <= now()
    ORDER BY not_before, enqueued_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE inbound_work AS w
SET claimed_by = %(worker)s, claimed_until = now() + make_interval(secs => %(lease)s)
FROM picked WHERE w.conversation_id = picked.conversation_id
RETURNING w.conversation_id, w.version
"""

_RENEW_SQL = """
UPDATE inbound_work SET claimed_until = now() + make_interval(secs => %(lease)s)
WHERE claimed_by = %(worker)s AND conversation_id = ANY(%(ids)s::uuid[])
"""

# One statement for a whole batch's outcome (see the module docstring). The release does
# not test the version: a message stored while this statement runs bumps the version of
# a row the DELETE then skips (PostgreSQL re-checks it), and the UPDATE must still
# release that row, whose old version is all this statement's snapshot shows.
_RELEASE_SQL = """
WITH outcome AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(versions)s::bigint[], %(errors)s::text[])
        AS o(conversation_id, version, error)
),
done AS (
    DELETE FROM inbound_work AS w USING outcome AS o
    WHERE w.conversation_id = o.conversation_id AND w.claimed_by = %(worker)s
      AND o.error IS NULL AND w.version = o.version
    RETURNING w.conversation_id
),
kept AS (
    UPDATE inbound_work AS w
    SET claimed_by = NULL, claimed_until = NULL,
        attempts = CASE WHEN o.error IS NULL THEN 0 ELSE w.attempts + 1 END,
        last_error = o.error,
        not_before = CASE WHEN o.error IS NULL THEN now()
                     ELSE now() + make_interval(secs => least(
                         %(max_backoff)s, %(base)s * power(2, w.attempts))) END
    FROM outcome AS o
    WHERE w.conversation_id = o.conversation_id AND w.claimed_by = %(worker)s
      AND w.conversation_id NOT IN (SELECT conversation_id FROM done)
    RETURNING w.conversation_id, o.error IS NULL AS again
)
SELECT count(*) FILTER (WHERE again) FROM kept
"""

_UNCLAIM_SQL = """
UPDATE inbound_work SET claimed_by = NULL, claimed_until = NULL
WHERE claimed_by = %(worker)s AND conversation_id = ANY(%(ids)s::uuid[])
"""

def enqueue_ctes(conversation_id_sql: str) -> str:
    """Two CTEs to embed in the statement that stores a message (``WITH …, <these>``):
    ``inbound_added`` records waiting work for the conversations ``conversation_id_sql``
    selects (a new row, or the existing row's version bumped: a batch running the
    conversation then sees it moved and runs it again); ``inbound_woken`` notifies the
    dispatchers, once, when one of them is not being processed (a claimed conversation
    is picked up again by its own dispatcher at release). The statement must read
    ``inbound_woken`` (e.g. ``(SELECT count(*) FROM inbound_woken)``), or PostgreSQL
    skips it."""
    return f"""
inbound_added AS (
    INSERT INTO inbound_work AS w (conversation_id)
    SELECT id FROM ({conversation_id_sql}) AS waiting(id)
    ON CONFLICT (conversation_id) DO UPDATE SET version = w.version + 1
    RETURNING w.conversation_id, (w.claimed_until IS NULL OR w.claimed_until < now()) AS idle
),
inbound_woken AS (
    SELECT pg_notify('{CHANNEL}', '') FROM inbound_added WHERE idle LIMIT 1
)"""


_ENQUEUE_SQL = f"""
WITH {enqueue_ctes("SELECT unnest(%(ids)s::uuid[])")}
SELECT count(*) FROM inbound_woken
"""


def _describe(exc: BaseException) -> str:
    """An error as stored in ``last_error`` and logged: its type and message, bounded."""
    return f"{type(exc).__name__}: {exc}"[:500]


def _stop_if_cancelled() -> None:
    """Raise if this task was asked to stop: a cancellation that raced a result can be
    swallowed by a driver (Python 3.11's wait_for), and a loop must not go on."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass(frozen=True, slots=True)
class InboundCounts:
    waiting: int
    running: int
    retrying: int


class InboundQueue:
    """Records and dispatches the conversations whose inbound messages wait."""

    def __init__(
        self,
        database_url: str,
        fast: AutocommitPool,
        *,
        retry_base_seconds: float = 2.0,
        max_backoff_seconds: float = 300.0,
    ) -> None:
        self._url = database_url
        self._fast = fast
        self._base = max(retry_base_seconds, 0.1)
        self._max_backoff = max_backoff_seconds

    async def enqueue(
        self,
        conversation_ids: Sequence[uuid.UUID],
        *,
        connection: DriverConnection | None = None,
    ) -> None:
        """Record waiting work for these conversations; with ``connection``, inside its
        transaction (commits with the message that causes it)."""
        if not conversation_ids:
            return
        params = {"ids": list(dict.fromkeys(conversation_ids))}
        if connection is not None:
            await connection.execute(_ENQUEUE_SQL, params)
            return
        async with self._fast.connection() as own:
            await own.execute(_ENQUEUE_SQL, params)

    async def counts(self) -> InboundCounts:
        async with self._fast.connection() as connection:
            cursor = await connection.execute(
                "SELECT count(*) FILTER (WHERE claimed_until IS NULL OR claimed_until < now()),"
                " count(*) FILTER (WHERE claimed_until >= now()),"
                " count(*) FILTER (WHERE attempts > 0) FROM inbound_work"
            )
            row = await cursor.fetchone()
        assert row is not None
        return InboundCounts(int(row[0]), int(row[1]), int(row[2]))

    async def retrying(self) -> list[tuple[uuid.UUID, int, str | None]]:
        """Conversations whose last batch failed: (id, attempts, last error)."""
        async with self._fast.connection() as connection:
            cursor = await connection.execute(
                "SELECT conversation_id, attempts, last_error FROM inbound_work "
                "WHERE attempts > 0 ORDER BY enqueued_at"
            )
            return [(r[0], int(r[1]), r[2]) for r in await cursor.fetchall()]

    async def run(
        self,
        handler: BatchHandler,
        *,
        concurrency: int,
        batch: int,
        lease_seconds: float,
        poll_seconds: float = 1.0,
        slot_seconds: float = 0.5,
        shutdown_seconds: float = 8.0,
    ) -> None:
        """Dispatch until cancelled. At most ``concurrency`` batches start work at once
        (a batch gives its slot back when it ends or after ``slot_seconds``, so a slow
        model never stops the others); each batch takes up to ``batch`` conversations,
        every conversation waiting when a slot frees (batches grow with the backlog).
        Cancelled, it lets running batches finish for ``shutdown_seconds``, then cancels
        them and releases their conversations for the next dispatcher."""
        await Dispatcher(
            self, handler, concurrency=concurrency, batch=batch, lease=lease_seconds,
            poll=poll_seconds, slot=slot_seconds, shutdown=shutdown_seconds,
        ).run()

    async def _claim(self, worker: uuid.UUID, limit: int, lease: float) -> dict[uuid.UUID, int]:
        async with self._fast.connection() as connection:
            cursor = await connection.execute(
                _CLAIM_SQL, {"worker": worker, "limit": limit, "lease": lease}
            )
            return {row[0]: int(row[1]) for row in await cursor.fetchall()}

    async def _renew(self, worker: uuid.UUID, ids: list[uuid.UUID], lease: float) -> None:
        async with self._fast.connection() as connection:
            await connection.execute(_RENEW_SQL, {"worker": worker, "ids": ids, "lease": lease})

    async def _release(
        self, worker: uuid.UUID, versions: dict[uuid.UUID, int], errors: dict[uuid.UUID, str]
    ) -> int:
        """End a batch; returns how many conversations got messages meanwhile."""
        ids = list(versions)
        async with self._fast.connection() as connection:
            cursor = await connection.execute(_RELEASE_SQL, {
                "worker": worker, "ids": ids, "versions": [versions[i] for i in ids],
                "errors": [errors.get(i) for i in ids], "base": self._base,
                "max_backoff": self._max_backoff,
            })
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def _unclaim(self, worker: uuid.UUID, ids: list[uuid.UUID]) -> None:
        async with self._fast.connection() as connection:
            await connection.execute(_UNCLAIM_SQL, {"worker": worker, "ids": ids})

    async def _listen(self, wake: asyncio.Event) -> None:
        """Set ``wake`` on every notification; reconnects after a failure."""
        while True:
            try:
                async for _ in notifications(self._url, CHANNEL):
                    wake.set()  # the first: anything stored while not listening
            except Exception as exc:  # polling covers the gap; listen again in a second
                log.warning("inbound.listen_failed", error=f"{type(exc).__name__}: {exc}")
            _stop_if_cancelled()
            await asyncio.sleep(1.0)


class Dispatcher:
    """One worker's claim loop (see :meth:`InboundQueue.run`)."""

    def __init__(
        self, queue: InboundQueue, handler: BatchHandler, *, concurrency: int, batch: int,
        lease: float, poll: float, slot: float, shutdown: float,
    ) -> None:
        self._queue = queue
        self._handler = handler
        self._batch = max(1, batch)
        self._lease = max(lease, 1.0)
        self._poll = poll
        self._slot = slot
        self._shutdown = shutdown
        self._slots = asyncio.Semaphore(max(1, concurrency))
        # conversations held at once: bounded, also when slow batches gave their slot back
        self._cap = self._batch * max(1, concurrency) * 8
        self._worker = uuid.uuid4()
        self._wake = asyncio.Event()
        # conversation -> the claim (of its batch) that holds it
        self._held: dict[uuid.UUID, dict[uuid.UUID, int]] = {}
        self._batches: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        background = [
            asyncio.create_task(self._queue._listen(self._wake), name="atiende-inbound-listen"),
            asyncio.create_task(self._renew_forever(), name="atiende-inbound-renew"),
        ]
        self._wake.set()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await self._wake.wait()
                _stop_if_cancelled()
                self._wake.clear()
                try:
                    await self._claim_waiting()
                except Exception:  # never let one bad claim stop this worker's inbound
                    log.exception("inbound.dispatch_failed")
                    await asyncio.sleep(self._poll)
        finally:
            await self._stop()
            for task in background:
                task.cancel()
            await asyncio.wait(background, timeout=2)

    async def _claim_waiting(self) -> None:
        """Start batches while conversations wait and slots are free."""
        while True:
            room = min(self._batch, self._cap - len(self._held))
            if room <= 0:
                return  # a batch ending sets wake
            await self._slots.acquire()
            self._wake.clear()  # what is stored from here on wakes the next claim
            try:
                claimed = await self._queue._claim(self._worker, room, self._lease)
            except (DatabaseError, OSError) as exc:
                self._slots.release()
                log.warning("inbound.claim_failed", error=str(exc))
                await asyncio.sleep(self._poll)
                return
            if not claimed:
                self._slots.release()
                return
            self._held.update(dict.fromkeys(claimed, claimed))
            task = asyncio.create_task(self._run_batch(claimed))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)
            if len(claimed) < room:
                return

    async def _run_batch(self, claimed: dict[uuid.UUID, int]) -> None:
        ids = list(claimed)
        work = asyncio.ensure_future(self._handler(ids))
        errors: dict[uuid.UUID, str] = {}
        try:
            try:
                await asyncio.wait({work}, timeout=self._slot)
            finally:
                self._slots.release()
            _, failures = await work
            for cid, exc in failures.items():
                errors[cid] = _describe(exc)
        except asyncio.CancelledError:
            work.cancel()
            with contextlib.suppress(Exception):
                await asyncio.shield(self._queue._unclaim(self._worker, ids))
            self._forget(claimed)
            raise
        except Exception as exc:  # the whole batch failed (database down, a bug)
            log.exception("inbound.batch_failed", conversations=len(ids))
            errors = dict.fromkeys(ids, _describe(exc))
        for cid, error in errors.items():
            log.warning("inbound.conversation_failed", conversation_id=str(cid), error=error)
        try:
            again = await asyncio.shield(self._queue._release(self._worker, claimed, errors))
        except (DatabaseError, OSError) as exc:  # the lease expires and another claims it
            log.warning("inbound.release_failed", conversations=len(ids), error=str(exc))
            again = 0
        full = len(self._held) >= self._cap
        self._forget(claimed)
        if again or full:  # claim again: it got messages meanwhile, or room freed
            self._wake.set()

    def _forget(self, claimed: dict[uuid.UUID, int]) -> None:
        """Stop holding a batch's conversations, unless another batch claimed one again
        meanwhile (its claim can be answered before this batch's release is)."""
        for cid in claimed:
            if self._held.get(cid) is claimed:
                del self._held[cid]

    async def _renew_forever(self) -> None:
        while True:
            _stop_if_cancelled()
            await asyncio.sleep(self._lease / 3)
            if not self._held:
                continue
            try:
                await self._queue._renew(self._worker, list(self._held), self._lease)
            except (DatabaseError, OSError) as exc:
                log.warning("inbound.renew_failed", error=str(exc))

    async def _stop(self) -> None:
        """Let running batches finish (up to the shutdown grace), then cancel the rest:
        their conversations are released for the next dispatcher."""
        if not self._batches:
            return
        _, running = await asyncio.wait(set(self._batches), timeout=self._shutdown)
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=3)
