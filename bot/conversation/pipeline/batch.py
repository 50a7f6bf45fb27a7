"""The batch: the waiting messages of several conversations, each strictly in order and
the conversations side by side; runs of plain text go together, the rest one by one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.responder import Decision, Responder
from bot.clock import Clock
from bot.conversation.outbox import OutboxSender
from bot.conversation.pipeline.committing import Committer
from bot.conversation.pipeline.deciding import Decider
from bot.conversation.pipeline.one_by_one import MessageProcessor
from bot.conversation.pipeline.runs import Run, Runs
from bot.conversation.pipeline.state import BATCH, Pending, Snapshot, StateReader
from bot.conversation.pipeline.voice import VoiceTranscriber
from bot.db import AutocommitPool
from bot.infra.redis_adapter import ConversationMemory, EventBus
from bot.media import MediaStore
from bot.metrics import Metrics
from bot.speech.service import SpeechService
from handoff.service import HandoffService


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
        self._state = state
        self._outbox = outbox
        self._metrics = metrics
        self._clock = clock
        self._runs = Runs(
            state=state, fast=fast, memory=memory, responder=responder, events=events,
            metrics=metrics, clock=clock, memory_ttl=memory_ttl, handoff=handoff,
        )
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
        candidates, others = self._runs.candidates(pending, now)
        drains: dict[uuid.UUID, asyncio.Task[int]] = {
            cid: asyncio.create_task(self._drain(cid, None)) for cid in others
        }
        done = 0
        deciding: set[asyncio.Future[Run]] = set()
        try:
            histories = await self._runs.histories([run for run, _ in candidates.values()])
            deciding = {
                asyncio.ensure_future(
                    self._runs.decide(run, batch, histories.get(cid, []), now)
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
        drained, failures = await self._gather(drains)
        done += drained
        idle = [cid for cid in ids if cid not in pending]
        if idle:  # nothing waiting (a retried job): replies its first run left unsent
            await self._outbox.send_pending(idle)
        return done, failures

    @staticmethod
    async def _gather(
        drains: dict[uuid.UUID, asyncio.Task[int]],
    ) -> tuple[int, dict[uuid.UUID, Exception]]:
        """Wait for every drain: how many messages they processed, and what failed."""
        done = 0
        failures: dict[uuid.UUID, Exception] = {}
        outcomes = await asyncio.gather(*drains.values(), return_exceptions=True)
        for cid, outcome in zip(drains, outcomes, strict=True):
            if isinstance(outcome, Exception):
                failures[cid] = outcome
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                done += outcome
        return done, failures

    async def _settle(
        self,
        runs: dict[uuid.UUID, Run],
        pending: dict[uuid.UUID, tuple[list[Pending], Snapshot]],
        now: datetime,
        drains: dict[uuid.UUID, asyncio.Task[int]],
    ) -> int:
        """Commit runs decided together and send their replies; a conversation with more
        to do goes on one by one (a drain task added to ``drains``). Returns how many
        messages were committed."""
        marked = await self._runs.commit(runs, now)
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
                    ran, snapshot, decision = await self._runs.process(batch[index:], snapshot)
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
