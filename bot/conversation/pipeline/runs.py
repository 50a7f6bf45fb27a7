"""Runs: a conversation's consecutive plain text messages, decided in order and committed
together (the runs of several conversations in one statement)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from bot.answering.responder import Decision, Responder, ResponseRequest
from bot.clock import Clock
from bot.conversation.pipeline.sql import COMMIT_RUNS_SQL
from bot.conversation.pipeline.state import Pending, Snapshot, StateReader, is_fresh
from bot.db import AutocommitPool
from bot.infra.redis_adapter import ConversationMemory, EventBus
from bot.logs import get_logger
from bot.messages import MessageKind, Turn
from bot.metrics import Metrics
from handoff.ownership import Owner
from handoff.service import HandoffService

log = get_logger("atiende.pipeline")


@dataclass(slots=True)
class Run:
    """Consecutive plain text messages of one conversation, decided in order.

    ``decided`` is the decision already taken for the message after the run (an
    escalation, opt-out or CSAT answer, which goes one by one): it is not decided twice."""

    conversation_id: uuid.UUID
    snapshot: Snapshot
    fresh: bool
    steps: list[tuple[Pending, Decision]]
    decided: Decision | None = None


def _turns(steps: list[tuple[Pending, Decision]], now: datetime) -> list[Turn]:
    """The memory lines of a run: each customer message, then the bot's replies to it."""
    turns: list[Turn] = []
    for pending, decision in steps:
        turns.append(Turn("customer", pending.text or "", now))
        turns += [Turn("bot", reply, now) for reply in decision.replies]
    return turns


def _plain(pending: Pending) -> bool:
    return pending.kind == MessageKind.TEXT.value and bool(pending.text and pending.text.strip())


class Runs:
    """Starts, decides and commits runs."""

    def __init__(
        self,
        *,
        state: StateReader,
        fast: AutocommitPool,
        memory: ConversationMemory,
        responder: Responder,
        events: EventBus,
        metrics: Metrics,
        clock: Clock,
        memory_ttl: timedelta,
        handoff: HandoffService | None,
    ) -> None:
        self._state = state
        self._fast = fast
        self._memory = memory
        self._responder = responder
        self._events = events
        self._metrics = metrics
        self._clock = clock
        self._ttl = memory_ttl
        self._handoff = handoff

    def candidates(
        self, pending: dict[uuid.UUID, tuple[list[Pending], Snapshot]], now: datetime
    ) -> tuple[dict[uuid.UUID, tuple[Run, list[Pending]]], list[uuid.UUID]]:
        """The conversations whose first waiting message may start a run (the bot owns
        them and it is plain text), each with its empty run; and the others."""
        candidates: dict[uuid.UUID, tuple[Run, list[Pending]]] = {}
        others: list[uuid.UUID] = []
        for cid, (batch, snapshot) in pending.items():
            if snapshot.owner is Owner.BOT and _plain(batch[0]):
                fresh = is_fresh(snapshot, now, self._ttl)
                candidates[cid] = (Run(cid, snapshot, fresh, []), batch)
            else:
                others.append(cid)
        return candidates, others

    async def histories(self, runs: list[Run]) -> dict[uuid.UUID, list[Turn]]:
        """The memory of each run's conversation since its context started (one round
        trip); none for a fresh context."""
        since = {r.conversation_id: r.snapshot.context_started_at for r in runs if not r.fresh}
        return await self._memory.recent_many(since) if since else {}

    async def process(
        self, messages: list[Pending], snapshot: Snapshot
    ) -> tuple[int, Snapshot, Decision | None]:
        """Decide one conversation's leading plain text messages in order and commit them
        together. Returns how many are done, the conversation's state after them, and the
        decision already taken for the next message (not decided twice)."""
        conversation_id = messages[0].conversation_id
        now = self._clock()
        candidates, _ = self.candidates({conversation_id: (messages, snapshot)}, now)
        if not candidates:
            return 0, snapshot, None
        run, _ = candidates[conversation_id]
        history = (await self.histories([run])).get(conversation_id, [])
        run = await self.decide(run, messages, history, now)
        if not run.steps:
            return 0, snapshot, run.decided
        if not await self.commit({conversation_id: run}, now):
            # An agent took the conversation meanwhile (or another run did the work):
            # one by one, from the state as it is now.
            return 0, await self._state.snapshot(conversation_id), None
        after = replace(
            snapshot, last_inbound_at=now,
            context_started_at=now if run.fresh else snapshot.context_started_at,
        )
        # every message of the run is done: marked here, or (rarely) by another run
        return len(run.steps), after, run.decided

    async def decide(
        self, run: Run, messages: list[Pending], history: list[Turn], now: datetime
    ) -> Run:
        """Decide ``messages`` in order into ``run`` while they are plain text the bot
        answers without escalating; stop at the first that is not."""
        conversation_id = run.conversation_id
        for pending in messages:
            text = pending.text
            if not _plain(pending) or text is None:
                break
            if self._handoff is not None and await self._handoff.csat_expected(
                conversation_id, text
            ) is not None:
                break
            try:
                with structlog.contextvars.bound_contextvars(
                    conversation_id=str(conversation_id), message_id=str(pending.id)
                ), self._metrics.stage_seconds.labels("decide").time():
                    decision = await self._responder.respond(
                        ResponseRequest(
                            conversation_id=conversation_id, message_id=pending.id,
                            text=text, history=[*history, *_turns(run.steps, now)],
                            contact_name=run.snapshot.contact_name, waited=pending.waited(),
                        )
                    )
            except Exception:
                break  # one by one: the failure is recorded (and retried) there
            if decision.escalate or decision.opt_out or decision.csat_score is not None:
                run.decided = decision
                break
            run.steps.append((pending, decision))
        return run

    async def commit(self, runs: dict[uuid.UUID, Run], now: datetime) -> set[uuid.UUID]:
        """Commit the runs in one statement (atomic on its own): a conversation's run only
        while the bot still owns it (its row locked), only messages still unprocessed,
        and replies only for the messages this statement marked. Then the metrics, the
        memory (one write) and the notifications (one). Returns the messages marked: none
        of a conversation an agent took meanwhile; fewer than its run when another run (a
        stalled job's double) had already processed some."""
        runs = {cid: run for cid, run in runs.items() if run.steps}
        if not runs:
            return set()
        steps = [step for run in runs.values() for step in run.steps]
        replies = [
            (pending.id, position, reply)
            for pending, decision in steps
            for position, reply in enumerate(decision.replies)
        ]
        params = {
            "run_ids": list(runs),
            "run_fresh": [run.fresh for run in runs.values()],
            "run_intent": [run.steps[-1][1].intent for run in runs.values()],
            "ids": [pending.id for pending, _ in steps],
            "intents": [decision.intent for _, decision in steps],
            "confidences": [decision.confidence for _, decision in steps],
            "sources": [json.dumps(list(decision.sources)) for _, decision in steps],
            "reply_ids": [uuid.uuid4() for _ in replies],
            "reply_to": [message_id for message_id, _, _ in replies],
            "reply_seq": [position for _, position, _ in replies],
            "reply_text": [reply for _, _, reply in replies],
            "now": now,
        }
        async with self._fast.connection() as connection:
            cursor = await connection.execute(COMMIT_RUNS_SQL, params)
            latencies = {row[0]: float(row[1]) for row in await cursor.fetchall()}
        await self._after_commit(runs, latencies, now)
        return set(latencies)

    async def _after_commit(
        self, runs: dict[uuid.UUID, Run], latencies: dict[uuid.UUID, float], now: datetime
    ) -> None:
        """After the runs' commit: metrics, memory and notifications, for what it marked."""
        turns: dict[uuid.UUID, list[Turn]] = {}
        fresh: list[uuid.UUID] = []
        events: list[tuple[str, dict[str, Any]]] = []
        for conversation_id, run in runs.items():
            steps = [(p, d) for p, d in run.steps if p.id in latencies]
            if not steps:
                continue
            turns[conversation_id] = _turns(steps, now)
            if run.fresh:
                fresh.append(conversation_id)
            for pending, decision in steps:
                self._metrics.processing_seconds.observe(latencies[pending.id])
                self._metrics.intents.labels(decision.intent).inc()
                payload = {
                    "message_id": str(pending.id), "conversation_id": str(conversation_id),
                    "owner": Owner.BOT.value, "bot_replied": True,
                }
                events += [(f"processed:{pending.id}", payload), ("conversations", payload)]
                log.info(
                    "pipeline.processed", conversation_id=str(conversation_id),
                    message_id=str(pending.id), intent=decision.intent, owner=Owner.BOT.value,
                    replies=len(decision.replies), escalated=False,
                )
        await self._memory.store_many(turns, forget=fresh)
        await self._events.publish_many(events)
