"""One message on its own (media, voice, CSAT, escalation, opt-out, a human owner):
transcribe, decide, commit; decided again when the owner changed under us, and parked
after its last failed attempt."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.answering.responder import Decision
from bot.clock import Clock
from bot.conversation.pipeline.committing import Committer
from bot.conversation.pipeline.deciding import Decider, queued_answer
from bot.conversation.pipeline.state import Pending, Snapshot, StateReader, is_fresh
from bot.conversation.pipeline.voice import VoiceTranscriber
from bot.logs import get_logger
from bot.messages import MessageKind
from bot.metrics import Metrics
from handoff.ownership import Owner, OwnerEvent, bot_may_reply, next_owner

log = get_logger("atiende.pipeline")


class MessageProcessor:
    """Processes one waiting message; returns the conversation's state after it."""

    def __init__(
        self,
        *,
        state: StateReader,
        voice: VoiceTranscriber,
        decider: Decider,
        committer: Committer,
        metrics: Metrics,
        clock: Clock,
        memory_ttl: timedelta,
    ) -> None:
        self._state = state
        self._voice = voice
        self._decider = decider
        self._committer = committer
        self._metrics = metrics
        self._clock = clock
        self._ttl = memory_ttl

    async def process(
        self, pending: Pending, snapshot: Snapshot, decided: Decision | None = None
    ) -> Snapshot:
        """Process ``pending`` (``decided``: its decision, already taken by a run)."""
        try:
            return await self._process(pending, snapshot, decided)
        except Exception as exc:
            # The job boundary: record the attempt, park the message after the last
            # one so the conversation moves on, otherwise let the dispatcher retry it.
            self._metrics.failures.inc()
            parked = await self._committer.record_failure(pending, exc)
            log.exception("pipeline.failed", attempts=pending.attempts + 1, parked=parked)
            if not parked:
                raise
            return await self._state.snapshot(pending.conversation_id)

    async def _process(
        self, pending: Pending, snapshot: Snapshot, decided: Decision | None = None
    ) -> Snapshot:
        if pending.kind == MessageKind.VOICE.value and pending.transcript is None:
            pending = await self._voice.transcribe(pending)
        for _ in range(3):
            now = self._clock()
            fresh = is_fresh(snapshot, now, self._ttl)
            owner = snapshot.owner
            if owner is Owner.CLOSED:
                owner = next_owner(owner, OwnerEvent.CUSTOMER_WRITES)
            decision = None
            if bot_may_reply(owner):
                decision = (
                    decided
                    or await self._decider.csat_answer(pending)
                    or await self._decider.decide(pending, snapshot, fresh)
                )
            elif owner is Owner.QUEUED and _answerable(pending):
                decision = queued_answer(await self._decider.decide(pending, snapshot, fresh))
            decided = None  # taken for the state it was decided in: decide again after
            committed = await self._committer.commit(pending, decision, now=now, fresh=fresh)
            if committed is not None:
                return replace(
                    snapshot,
                    owner=committed,
                    last_inbound_at=now,
                    context_started_at=now if fresh else snapshot.context_started_at,
                )
            snapshot = await self._state.snapshot(pending.conversation_id)
        raise RuntimeError("conversation owner kept changing while processing")


def _answerable(pending: Pending) -> bool:
    """A message the knowledge base might answer (text, or a transcribed voice note)."""
    return pending.kind in (MessageKind.TEXT.value, MessageKind.VOICE.value) and bool(
        (pending.text or pending.transcript or "").strip())
