"""The sequence tick: finds the due steps by an indexed query and queues them.

Each batch is one transaction: the due enrollments are locked (``FOR UPDATE SKIP
LOCKED`` on the partial index of active ``due_at``), each gets its decision
(``timing.decide``), and the outbox rows, the ``sequence_sends`` rows (unique per
enrollment and step) and the enrollments' move to their next step are written together.
A worker killed mid-tick leaves nothing half done: the batch rolls back and the next tick
takes it again; a committed step is never due again. The rows are then sent by the same
outbox (and per-number pacing) as every other message.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import insert, text, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.conversation.outbox import INTERRUPTED
from bot.logs import get_logger
from bot.messages import Author, MessageKind
from bot.metrics import Metrics
from bot.sequences.intents import IntentWatcher
from bot.sequences.models import SequenceEnrollment, SequenceSend
from bot.sequences.timing import Action, Decision, Due, decide, next_due
from bot.sequences.values import Step
from bot.settings.sequences import SequencesConfig
from handoff.conversations import Message

__all__ = ["BatchResult", "PendingSender", "SequenceTicker", "TickResult"]

log = get_logger("atiende.sequences")

BUSY_RETRY = timedelta(seconds=60)  # a paced number with a full outbox is tried again then

_DUE = """
    SELECT e.id, e.sequence_id, e.conversation_id, e.next_step, e.enrolled_at,
           e.last_step_at, e.paused_reason, e.phone_e164, e.name, e.fields, e.steps_queued,
           c.channel, c.account, c.owner, c.owner_changed_at, c.last_inbound_at,
           ct.opted_out,
           EXISTS (SELECT 1 FROM contact_blocks b WHERE b.conversation_id = e.conversation_id
                   AND b.state = 'blocked') AS blocked,
           EXISTS (SELECT 1 FROM messages i WHERE i.conversation_id = e.conversation_id
                   AND i.seq > e.enrolled_seq AND i.direction = 'in'
                   AND i.author = 'customer') AS replied,
           (SELECT CASE WHEN m.error = :interrupted THEN 'interrupted' ELSE m.status END
            FROM sequence_sends p JOIN messages m ON m.id = p.message_id
            WHERE p.enrollment_id = e.id AND p.step = e.next_step - 1) AS previous_status
    FROM sequence_enrollments e
    JOIN conversations c ON c.id = e.conversation_id
    JOIN contacts ct ON ct.id = e.contact_id
    WHERE e.state = 'active' AND e.due_at <= :now {only}
    ORDER BY e.due_at
    LIMIT :batch
    FOR UPDATE OF e SKIP LOCKED
"""
_DUE_ANY = text(_DUE.format(only=""))
_DUE_THESE = text(_DUE.format(only="AND e.id = ANY(:ids)"))

# Held (in a transaction of its own) while a tick runs.
_TICK_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('atiende.sequences.tick'))")

# Unsent follow-ups per paced number (the partial index on pending messages answers it).
_BUSY = text(
    """
    SELECT m.channel, c.account, count(*) AS n
    FROM messages m JOIN conversations c ON c.id = m.conversation_id
    WHERE m.status IN ('pending', 'sending') AND m.direction = 'out'
      AND m.author = 'sequence' AND m.channel = ANY(:paced)
    GROUP BY m.channel, c.account
    """
)


class PendingSender(Protocol):
    """The outbox (``bot.conversation.outbox``)."""

    async def send_pending(
        self, conversations: uuid.UUID | Sequence[uuid.UUID] | None = None, *,
        older_than: timedelta | None = None, channels: Any = None,
    ) -> int: ...

    async def send_each(self, outbox_ids: Sequence[uuid.UUID]) -> int: ...


@dataclass(frozen=True, slots=True)
class _Rules:
    steps: tuple[Step, ...]
    timezone: str
    on_reply: str
    on_human: str
    on_opt_out: str
    active: bool


@dataclass(slots=True)
class BatchResult:
    """One transaction of the tick."""

    found: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    # what to send once committed: (message, conversation, channel)
    queued: list[tuple[uuid.UUID, uuid.UUID, str]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class TickResult:
    enrolled_by_intent: int
    found: int
    queued: int
    by_hand: int
    waiting: int
    stopped: int
    completed: int
    batches: list[float]  # seconds each find-and-queue transaction took


class SequenceTicker:
    """Runs the periodic tick: automatic enrollments, then the due steps."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        outbox: PendingSender,
        clock: Clock,
        config: SequencesConfig,
        paced_channels: Sequence[str] = (),
        intents: IntentWatcher | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._outbox = outbox
        self._clock = clock
        self._config = config
        self._paced = list(paced_channels)
        self._intents = intents or IntentWatcher(sessions=sessions, clock=clock)
        self._metrics = metrics

    async def tick(self) -> TickResult:
        """Enroll by intent, then queue due steps batch after batch (within the budget).
        One tick at a time in the whole cluster: a periodic tick that finds another still
        running returns at once (so a killed worker had at most one step in flight)."""
        async with self._sessions() as guard, guard.begin():
            if not (await guard.execute(_TICK_LOCK)).scalar():
                return TickResult(0, 0, 0, 0, 0, 0, 0, [])
            return await self._tick()

    async def _tick(self) -> TickResult:
        started = time.perf_counter()
        enrolled = await self._intents.run()
        totals: Counter[str] = Counter()
        batches: list[float] = []
        found = 0
        while True:
            batch = await self.run_batch()
            batches.append(batch.seconds)
            found += batch.found
            totals.update(batch.actions)
            await self._send(batch)
            spent = time.perf_counter() - started
            if batch.found < self._config.tick_batch or spent > self._config.tick_budget_seconds:
                break
        result = TickResult(
            enrolled_by_intent=enrolled, found=found, queued=totals[Action.SEND],
            by_hand=totals[Action.BY_HAND], waiting=totals[Action.WAIT],
            stopped=totals[Action.STOP], completed=totals["completed"], batches=batches,
        )
        if found or enrolled:
            log.info("sequences.tick", found=found, queued=result.queued, by_hand=result.by_hand,
                     waiting=result.waiting, stopped=result.stopped, enrolled=enrolled,
                     seconds=round(time.perf_counter() - started, 3))
        return result

    async def run_due(self, enrollment_ids: Sequence[uuid.UUID]) -> BatchResult:
        """Queue these enrollments' steps now if they are due: a first step without delay
        goes out when the enrollment is made, not at the next tick."""
        batch = await self.run_batch(only=enrollment_ids)
        await self._send(batch)
        return batch

    async def _send(self, batch: BatchResult) -> None:
        """Paced numbers get their send job; the rest go out one claimed row at a time
        (a worker killed mid-send repeats at most the message in flight)."""
        paced = [c for _, c, channel in batch.queued if channel in self._paced]
        if paced:
            await self._outbox.send_pending(paced, channels=set(self._paced))
        unpaced = [m for m, _, channel in batch.queued if channel not in self._paced]
        if unpaced:
            await self._outbox.send_each(unpaced)

    async def run_batch(self, *, only: Sequence[uuid.UUID] | None = None) -> BatchResult:
        """Find up to ``tick_batch`` due enrollments (of ``only``, if given) and write what
        each one does, in one transaction."""
        started = time.perf_counter()
        result = BatchResult()
        now = self._clock()
        params: dict[str, Any] = {"now": now, "batch": self._config.tick_batch,
                                  "interrupted": INTERRUPTED}
        if only is not None:
            params["ids"] = list(only)
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(_DUE_ANY if only is None else _DUE_THESE, params)
            ).all()
            result.found = len(rows)
            if rows:
                await self._apply(session, rows, now, result)
        result.seconds = time.perf_counter() - started
        if self._metrics is not None:
            self._metrics.sequence_batch_seconds.observe(result.seconds)
            for action, n in result.actions.items():
                if action != "completed":
                    self._metrics.sequence_steps.labels(action).inc(n)
        return result

    async def _apply(
        self, session: AsyncSession, rows: Sequence[Row[Any]], now: datetime,
        result: BatchResult,
    ) -> None:
        rules = await self._rules(session, {r.sequence_id for r in rows})
        busy = await self._busy(session)
        recheck = timedelta(minutes=self._config.recheck_minutes)
        messages: list[dict[str, Any]] = []
        sends: list[dict[str, Any]] = []
        moves: list[dict[str, Any]] = []
        for row in rows:
            rule = rules[row.sequence_id]
            decision = decide(_due(row, rule), now, recheck=recheck)
            number = (row.channel, row.account)
            if decision.action is Action.SEND and row.channel in self._paced:
                if busy[number] >= self._config.max_queued_per_number:
                    decision = Decision(Action.WAIT, row.paused_reason, until=now + BUSY_RETRY)
                else:
                    busy[number] += 1
            move = _move(row, rule, decision, now)
            result.actions[decision.action] += 1
            if move["state"] == "completed":
                result.actions["completed"] += 1
            moves.append(move)
            if decision.action in (Action.SEND, Action.BY_HAND):
                message_id = uuid.uuid4() if decision.action is Action.SEND else None
                sends.append(_send_row(row, decision, message_id, now))
                if message_id is not None:
                    messages.append(_message_row(row, decision, message_id))
                    result.queued.append((message_id, row.conversation_id, row.channel))
            if decision.action is Action.STOP:
                log.info("sequences.stopped", enrollment_id=str(row.id),
                         conversation_id=str(row.conversation_id), reason=decision.reason)
        if messages:
            await session.execute(insert(Message), messages)
        if sends:
            await session.execute(insert(SequenceSend), sends)
        await session.execute(update(SequenceEnrollment), moves)

    async def _rules(self, session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, _Rules]:
        rows = (
            await session.execute(
                text("SELECT id, steps, timezone, on_reply, on_human, on_opt_out, status "
                     "FROM sequences WHERE id = ANY(:ids)"),
                {"ids": list(ids)},
            )
        ).all()
        return {
            r.id: _Rules(tuple(Step.from_json(s) for s in r.steps), r.timezone, r.on_reply,
                         r.on_human, r.on_opt_out, r.status == "active")
            for r in rows
        }

    async def _busy(self, session: AsyncSession) -> Counter[tuple[str, str]]:
        if not self._paced:
            return Counter()
        rows = (await session.execute(_BUSY, {"paced": self._paced})).all()
        return Counter({(r.channel, r.account): int(r.n) for r in rows})


def _due(row: Row[Any], rule: _Rules) -> Due:
    return Due(
        enrollment_id=row.id, conversation_id=row.conversation_id,
        step_index=min(row.next_step, len(rule.steps) - 1), steps=rule.steps,
        timezone=rule.timezone, on_reply=rule.on_reply, on_human=rule.on_human,
        on_opt_out=rule.on_opt_out,
        sequence_active=rule.active and row.next_step < len(rule.steps),
        channel=row.channel, owner=row.owner, owner_changed_at=row.owner_changed_at,
        last_inbound_at=row.last_inbound_at, opted_out=row.opted_out, blocked=row.blocked,
        replied=row.replied, paused_reason=row.paused_reason,
        previous_status=row.previous_status, phone=row.phone_e164, name=row.name,
        fields=dict(row.fields or {}),
    )


def _move(row: Row[Any], rule: _Rules, decision: Decision, now: datetime) -> dict[str, Any]:
    """The enrollment's row after ``decision`` (every key, for one bulk UPDATE)."""
    move: dict[str, Any] = {
        "id": row.id, "state": "active", "stop_reason": None, "paused_reason": None,
        "next_step": row.next_step, "steps_queued": row.steps_queued, "due_at": None,
        "last_step_at": row.last_step_at,
        "finished_at": None,
    }
    if decision.action is Action.STOP:
        move.update(state="stopped", stop_reason=decision.reason, finished_at=now)
    elif decision.action is Action.WAIT:
        move.update(due_at=decision.until, paused_reason=decision.reason)
    else:
        step = row.next_step + 1
        due = next_due(rule.steps, step, enrolled_at=row.enrolled_at, now=now,
                       timezone=rule.timezone)
        move.update(next_step=step, due_at=due, last_step_at=now,
                    steps_queued=row.steps_queued + (decision.action is Action.SEND))
        if due is None:
            move.update(state="completed", finished_at=now)
    return move


def _send_row(
    row: Row[Any], decision: Decision, message_id: uuid.UUID | None, now: datetime
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(), "enrollment_id": row.id, "sequence_id": row.sequence_id,
        "conversation_id": row.conversation_id, "step": row.next_step,
        "kind": "message" if message_id is not None else "manual", "message_id": message_id,
        "text": None if message_id is not None else decision.text, "reason": decision.reason,
        "created_at": now, "done_at": None, "done_by": None,
    }


def _message_row(row: Row[Any], decision: Decision, message_id: uuid.UUID) -> dict[str, Any]:
    return {
        "id": message_id, "conversation_id": row.conversation_id, "direction": "out",
        "author": Author.SEQUENCE.value, "kind": MessageKind.TEXT.value,
        "channel": row.channel, "text": decision.text, "status": "pending",
        "raw": {"template": decision.template} if decision.template else None,
    }
