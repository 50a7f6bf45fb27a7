"""The worker's pipeline: one conversation's inbound messages, strictly in order.

For each stored message: decide (only if the bot owns the conversation), then in
one transaction write the replies to the outbox, move the owner if the bot
escalates, and mark the message processed. A retried job finds the message
processed and does nothing, so a reply is never written twice.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.responder import Decision, Responder, ResponseRequest
from bot.clock import Clock
from bot.conversation.outbox import OutboxSender
from bot.conversation.pipeline.committing import Committer
from bot.conversation.pipeline.deciding import MEDIA_NEEDS_PERSON, Decider
from bot.conversation.pipeline.one_by_one import MessageProcessor
from bot.conversation.pipeline.sql import COMMIT_RUNS_SQL
from bot.conversation.pipeline.state import (
    BATCH,
    Pending,
    Snapshot,
    StateReader,
    is_fresh,
)
from bot.conversation.pipeline.voice import VoiceTranscriber
from bot.db import AutocommitPool
from bot.infra.redis_adapter import ConversationMemory, EventBus
from bot.logs import get_logger
from bot.media import MediaStore
from bot.messages import MessageKind, Turn
from bot.metrics import Metrics
from bot.speech.service import SpeechService
from handoff.ownership import Owner
from handoff.service import HandoffService

__all__ = ["BATCH", "MEDIA_NEEDS_PERSON", "Pipeline"]

log = get_logger("atiende.pipeline")

@dataclass(slots=True)
class _Run:
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


class Pipeline:
    """Processes the inbound messages of conversations; called by the inbound dispatcher."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        fast: AutocommitPool,
        memory: ConversationMemory,
        responder: Responder,
        outbox: OutboxSender,
        events: EventBus,
        metrics: Metrics,
        clock: Clock,
        memory_ttl: timedelta,
        max_attempts: int,
        media: MediaStore | None = None,
        speech: SpeechService | None = None,
        handoff: HandoffService | None = None,
    ) -> None:
        state = StateReader(sessions=sessions, fast=fast)
        self._handoff = handoff
        self._state = state
        self._fast = fast
        self._memory = memory
        self._responder = responder
        self._outbox = outbox
        self._events = events
        self._metrics = metrics
        self._clock = clock
        self._ttl = memory_ttl
        self._one_by_one = MessageProcessor(
            state=state,
            voice=VoiceTranscriber(sessions=sessions, media=media, speech=speech),
            decider=Decider(
                memory=memory, responder=responder, metrics=metrics, handoff=handoff
            ),
            committer=Committer(
                sessions=sessions, memory=memory, events=events, metrics=metrics,
                max_attempts=max_attempts, handoff=handoff,
            ),
            metrics=metrics, clock=clock, memory_ttl=memory_ttl,
        )

    async def process_conversation(self, conversation_id: uuid.UUID) -> int:
        """Drain every stored, unprocessed message of one conversation; return how many.
        Raises what failed (the conversation is retried)."""
        done, failures = await self.process_conversations([conversation_id])
        if conversation_id in failures:
            raise failures[conversation_id]
        return done

    async def process_conversations(
        self, conversation_ids: Sequence[uuid.UUID]
    ) -> tuple[int, dict[uuid.UUID, Exception]]:
        """Drain every stored, unprocessed message of several conversations (a worker
        under load takes every conversation waiting): each conversation strictly in
        order, the conversations side by side. Returns how many messages were processed,
        and the failure of each conversation that must be retried.

        The common case costs a few round trips for the whole batch: one read; the runs
        of plain text messages decided in order (each decision sees the run's earlier
        turns); the runs decided together committed in one statement, with one memory
        write, one notification write and one outbox send. Runs decided later (a slow
        model) commit as they are decided, so no conversation waits for another's.
        Anything else (media, voice, CSAT, escalation, opt-out, a human owner, an agent
        taking over meanwhile) goes one by one in its conversation. A message stored
        while this runs bumps its conversation's waiting work, which runs the
        conversation again after this batch, so a short batch ends the drain without
        another query."""
        ids = list(dict.fromkeys(conversation_ids))
        self._metrics.batch_conversations.observe(len(ids))
        pending = await self._state.pending(ids)
        now = self._clock()
        candidates, others = self._candidates(pending, now)
        drains: dict[uuid.UUID, asyncio.Task[int]] = {
            cid: asyncio.create_task(self._drain(cid, None)) for cid in others
        }
        done = 0
        deciding: set[asyncio.Future[_Run]] = set()
        try:
            histories = await self._histories([run for run, _ in candidates.values()])
            deciding = {
                asyncio.ensure_future(
                    self._decide_run(run, batch, histories.get(cid, []), now)
                ) for cid, (run, batch) in candidates.items()
            }
            while deciding:
                decided, deciding = await asyncio.wait(
                    deciding, return_when=asyncio.FIRST_COMPLETED
                )
                runs = {task.result().conversation_id: task.result() for task in decided}
                done += await self._settle(runs, pending, now, drains)
        except BaseException:
            for drain in drains.values():
                drain.cancel()
            raise
        finally:
            for task in deciding:
                task.cancel()
        failures: dict[uuid.UUID, Exception] = {}
        outcomes = await asyncio.gather(*drains.values(), return_exceptions=True)
        for cid, outcome in zip(drains, outcomes, strict=True):
            if isinstance(outcome, Exception):
                failures[cid] = outcome
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                done += outcome
        idle = [cid for cid in ids if cid not in pending]
        if idle:  # nothing waiting (a retried job): replies its first run left unsent
            await self._outbox.send_pending(idle)
        return done, failures

    async def _settle(
        self,
        runs: dict[uuid.UUID, _Run],
        pending: dict[uuid.UUID, tuple[list[Pending], Snapshot]],
        now: datetime,
        drains: dict[uuid.UUID, asyncio.Task[int]],
    ) -> int:
        """Commit runs decided together and send their replies; a conversation with more
        to do goes on one by one (a drain task added to ``drains``). Returns how many
        messages were committed."""
        marked = await self._commit_runs(runs, now)
        finished: list[uuid.UUID] = []
        for cid, run in runs.items():
            batch = pending[cid][0]
            ran = len(run.steps)
            if ran and not any(p.id in marked for p, _ in run.steps):
                # an agent took over meanwhile: one by one, as it is now
                drains[cid] = asyncio.create_task(self._drain(cid, None))
            elif ran < len(batch) or len(batch) >= BATCH:
                after = (batch[ran].id, run.decided) if run.decided else None
                drains[cid] = asyncio.create_task(self._drain(cid, after))
            else:
                finished.append(cid)
        if finished:
            await self._outbox.send_pending(
                finished, channels={pending[cid][1].channel for cid in finished}
            )
        return len(marked)

    async def _histories(self, runs: list[_Run]) -> dict[uuid.UUID, list[Turn]]:
        """The memory of each run's conversation since its context started (one round
        trip); none for a fresh context."""
        since = {r.conversation_id: r.snapshot.context_started_at for r in runs if not r.fresh}
        return await self._memory.recent_many(since) if since else {}

    def _candidates(
        self, pending: dict[uuid.UUID, tuple[list[Pending], Snapshot]], now: datetime
    ) -> tuple[dict[uuid.UUID, tuple[_Run, list[Pending]]], list[uuid.UUID]]:
        """The conversations whose first waiting message may start a run (the bot owns
        them and it is plain text), each with its empty run; and the others."""
        candidates: dict[uuid.UUID, tuple[_Run, list[Pending]]] = {}
        others: list[uuid.UUID] = []
        for cid, (batch, snapshot) in pending.items():
            if snapshot.owner is Owner.BOT and _plain(batch[0]):
                fresh = is_fresh(snapshot, now, self._ttl)
                candidates[cid] = (_Run(cid, snapshot, fresh, []), batch)
            else:
                others.append(cid)
        return candidates, others

    async def _drain(
        self, conversation_id: uuid.UUID, decided: tuple[uuid.UUID, Decision] | None
    ) -> int:
        """One conversation, message by message where needed (``decided``: the decision
        already taken for a waiting message, as (message id, decision)); then its
        outbox."""
        done = 0
        channel: str | None = None
        while True:
            batch, snapshot = (await self._state.pending([conversation_id])).get(
                conversation_id, ([], None)
            )
            index = 0
            while index < len(batch):
                assert snapshot is not None
                channel = snapshot.channel
                if decided is not None and decided[0] == batch[index].id:
                    decision: Decision | None = decided[1]
                else:
                    ran, snapshot, decision = await self._process_run(batch[index:], snapshot)
                    index += ran
                    done += ran
                    if index >= len(batch):
                        break
                decided = None
                pending = batch[index]
                with structlog.contextvars.bound_contextvars(
                    conversation_id=str(conversation_id), message_id=str(pending.id)
                ):
                    snapshot = await self._one_by_one.process(pending, snapshot, decision)
                index += 1
                done += 1
            if len(batch) < BATCH:
                break
        await self._outbox.send_pending(
            [conversation_id], channels=None if channel is None else {channel}
        )
        return done

    async def _process_run(
        self, messages: list[Pending], snapshot: Snapshot
    ) -> tuple[int, Snapshot, Decision | None]:
        """Decide one conversation's leading plain text messages in order and commit them
        together. Returns how many are done, the conversation's state after them, and the
        decision already taken for the next message (not decided twice)."""
        conversation_id = messages[0].conversation_id
        now = self._clock()
        candidates, _ = self._candidates({conversation_id: (messages, snapshot)}, now)
        if not candidates:
            return 0, snapshot, None
        run, _ = candidates[conversation_id]
        history = (await self._histories([run])).get(conversation_id, [])
        run = await self._decide_run(run, messages, history, now)
        if not run.steps:
            return 0, snapshot, run.decided
        if not await self._commit_runs({conversation_id: run}, now):
            # An agent took the conversation meanwhile (or another run did the work):
            # one by one, from the state as it is now.
            return 0, await self._state.snapshot(conversation_id), None
        after = replace(
            snapshot, last_inbound_at=now,
            context_started_at=now if run.fresh else snapshot.context_started_at,
        )
        # every message of the run is done: marked here, or (rarely) by another run
        return len(run.steps), after, run.decided

    async def _decide_run(
        self, run: _Run, messages: list[Pending], history: list[Turn], now: datetime
    ) -> _Run:
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
                            contact_name=run.snapshot.contact_name,
                        )
                    )
            except Exception:
                break  # one by one: the failure is recorded (and retried) there
            if decision.escalate or decision.opt_out or decision.csat_score is not None:
                run.decided = decision
                break
            run.steps.append((pending, decision))
        return run

    async def _commit_runs(self, runs: dict[uuid.UUID, _Run], now: datetime) -> set[uuid.UUID]:
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
        await self._after_runs(runs, latencies, now)
        return set(latencies)

    async def _after_runs(
        self, runs: dict[uuid.UUID, _Run], latencies: dict[uuid.UUID, float], now: datetime
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
