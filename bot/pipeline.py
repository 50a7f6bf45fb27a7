"""The worker's pipeline: one conversation's inbound messages, strictly in order.

For each stored message: decide (only if the bot owns the conversation), then in
one transaction write the replies to the outbox, move the owner if the bot
escalates, and mark the message processed. A retried job finds the message
processed and does nothing, so a reply is never written twice.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.db import AutocommitPool
from bot.errors import AudioUnusable, TranscriberUnavailable
from bot.i18n import detect_language, t
from bot.logs import get_logger
from bot.media import MediaStore
from bot.messages import Author, MediaRef, MessageKind
from bot.metrics import Metrics
from bot.outbox import OutboxSender
from bot.redis_adapter import ConversationMemory, EventBus, Turn
from bot.responder import Decision, Responder, ResponseRequest
from bot.router import Intent, route_rules
from bot.speech.records import TranscriptionRecord
from bot.speech.service import SpeechService
from handoff.ownership import Owner, OwnerEvent, bot_may_reply, next_owner
from handoff.records import CONTACTS, CONVERSATIONS, MESSAGES
from handoff.service import CLOSE_CSAT_SQL, HandoffService

log = get_logger("atiende.pipeline")

MEDIA_NEEDS_PERSON = "media_needs_person"

BATCH = 50

_PENDING_SQL = """
SELECT m.id, m.conversation_id, m.kind, m.text, m.transcript, m.attempts, m.media,
       c.owner, ct.name, c.context_started_at, c.last_inbound_at, c.channel
FROM messages m
JOIN conversations c ON c.id = m.conversation_id
JOIN contacts ct ON ct.id = c.contact_id
WHERE m.conversation_id = %s AND m.direction = 'in' AND m.status = 'received'
ORDER BY m.seq
LIMIT %s
"""

# A run's whole commit (see Pipeline._commit_run); the latency of each message marked
# (accepted -> processed, both stamped by PostgreSQL) comes back for the metrics. The
# run's messages are committed at once; their processed_at stamps (a microsecond apart)
# keep the order in which they were decided.
_COMMIT_RUN_SQL = f"""
WITH conversation AS (
    SELECT id, channel FROM conversations
    WHERE id = %(conversation_id)s AND owner = 'bot'
    FOR UPDATE
),
marked AS (
    UPDATE messages AS m
    SET status = 'processed', error = NULL,
        processed_at = statement_timestamp() + (v.n - 1) * interval '1 microsecond',
        intent = v.intent, confidence = v.confidence, escalated = false,
        sources = v.sources::jsonb
    FROM unnest(%(ids)s::uuid[], %(intents)s::text[], %(confidences)s::float8[],
                %(sources)s::text[]) WITH ORDINALITY AS v(id, intent, confidence, sources, n),
         conversation
    WHERE m.id = v.id AND m.status = 'received' AND m.conversation_id = conversation.id
    RETURNING m.id, extract(epoch FROM m.processed_at - m.created_at) AS latency
),
replies AS (
    INSERT INTO messages (id, conversation_id, direction, author, kind, channel, text,
                          status, in_reply_to, reply_seq)
    SELECT r.id, conversation.id, 'out', 'bot', 'text', conversation.channel, r.text,
           'pending', r.in_reply_to, r.reply_seq
    FROM unnest(%(reply_ids)s::uuid[], %(reply_to)s::uuid[], %(reply_seq)s::int[],
                %(reply_text)s::text[]) WITH ORDINALITY AS r(id, in_reply_to, reply_seq, text, n)
    JOIN marked ON marked.id = r.in_reply_to
    CROSS JOIN conversation
    ORDER BY r.n  -- the outbox sends in seq order: replies keep the messages' order
),
closed_csat AS (
    {CLOSE_CSAT_SQL} AND EXISTS (SELECT 1 FROM marked)
),
moved AS (
    UPDATE conversations SET
        last_inbound_at = %(now)s, last_message_at = %(now)s, last_intent = %(last_intent)s,
        context_started_at = CASE WHEN %(fresh)s THEN %(now)s ELSE context_started_at END
    WHERE id = (SELECT id FROM conversation) AND EXISTS (SELECT 1 FROM marked)
)
SELECT id, latency FROM marked
"""


def _turns(run: list[tuple[_Pending, Decision]], now: datetime) -> list[Turn]:
    """The memory lines of a run: each customer message, then the bot's replies to it."""
    turns: list[Turn] = []
    for pending, decision in run:
        turns.append(Turn("customer", pending.text or "", now))
        turns += [Turn("bot", reply, now) for reply in decision.replies]
    return turns



@dataclass(frozen=True, slots=True)
class _Pending:
    id: uuid.UUID
    conversation_id: uuid.UUID
    kind: str
    text: str | None
    transcript: str | None
    attempts: int
    media: dict[str, Any] | None = None
    voice_problem: str | None = None  # AudioUnusable.code, "refused" (not stored), or "failed"

    @property
    def media_ref(self) -> MediaRef | None:
        if not self.media or not self.media.get("mime_type"):
            return None
        return MediaRef(**{k: v for k, v in self.media.items() if k in MediaRef.__slots__})


@dataclass(frozen=True, slots=True)
class _Snapshot:
    owner: Owner
    contact_name: str | None
    context_started_at: datetime | None
    last_inbound_at: datetime | None
    channel: str


async def _read_snapshot(session: AsyncSession, conversation_id: uuid.UUID) -> _Snapshot:
    row = (
        await session.execute(
            select(
                CONVERSATIONS.c.owner, CONTACTS.c.name, CONVERSATIONS.c.context_started_at,
                CONVERSATIONS.c.last_inbound_at, CONVERSATIONS.c.channel,
            )
            .join(CONTACTS, CONTACTS.c.id == CONVERSATIONS.c.contact_id)
            .where(CONVERSATIONS.c.id == conversation_id)
        )
    ).one()
    return _Snapshot(
        Owner(row.owner), row.name, row.context_started_at, row.last_inbound_at, row.channel
    )


class Pipeline:
    """Processes inbound messages of one conversation; called by the job worker."""

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
        self._handoff = handoff
        self._sessions = sessions
        self._fast = fast
        self._memory = memory
        self._responder = responder
        self._outbox = outbox
        self._events = events
        self._metrics = metrics
        self._clock = clock
        self._ttl = memory_ttl
        self._max_attempts = max_attempts
        self._media = media
        self._speech = speech

    async def process_conversation(self, conversation_id: uuid.UUID) -> int:
        """Drain every stored, unprocessed message of the conversation; return how many.

        Consecutive plain text messages the bot answers without escalating are decided
        in order and committed together (one transaction, one memory write); anything
        else (media, voice, CSAT, escalation, opt-out, a human owner) goes one by one.
        A message stored while this runs has its own waiting job (queued behind this one
        by the conversation lock), so a short batch ends the drain without another query."""
        done = 0
        channel: str | None = None
        while True:
            batch, snapshot = await self._pending(conversation_id)
            index = 0
            while index < len(batch):
                assert snapshot is not None
                channel = snapshot.channel
                ran, snapshot, decided = await self._process_run(batch[index:], snapshot)
                index += ran
                done += ran
                if index < len(batch):
                    pending = batch[index]
                    with structlog.contextvars.bound_contextvars(
                        conversation_id=str(conversation_id), message_id=str(pending.id)
                    ):
                        snapshot = await self._process_guarded(pending, snapshot, decided)
                    index += 1
                    done += 1
            if len(batch) < BATCH:
                break
        await self._outbox.send_pending(conversation_id, channel=channel)
        return done

    async def _pending(self, conversation_id: uuid.UUID) -> tuple[list[_Pending], _Snapshot | None]:
        """The next batch of unprocessed messages with the conversation's state, in one
        round trip (autocommit: no transaction to open and close)."""
        async with self._fast.connection() as connection:
            cursor = await connection.execute(_PENDING_SQL, (conversation_id, BATCH))
            rows = await cursor.fetchall()
        if not rows:
            return [], None
        first = rows[0]
        snapshot = _Snapshot(Owner(first[7]), first[8], first[9], first[10], first[11])
        return [_Pending(*row[:7]) for row in rows], snapshot

    async def _process_run(
        self, messages: list[_Pending], snapshot: _Snapshot
    ) -> tuple[int, _Snapshot, Decision | None]:
        """Decide the leading plain text messages in order and commit them together.

        Returns how many were committed, the conversation's state after them, and the
        decision already taken for the next message (an escalation, opt-out or CSAT
        answer, which goes one by one) so it is not decided twice."""
        if snapshot.owner is not Owner.BOT:
            return 0, snapshot, None
        conversation_id = messages[0].conversation_id
        now = self._clock()
        fresh = snapshot.last_inbound_at is None or now - snapshot.last_inbound_at > self._ttl
        history: list[Turn] | None = None
        run: list[tuple[_Pending, Decision]] = []
        decided: Decision | None = None
        for pending in messages:
            text = pending.text
            if pending.kind != MessageKind.TEXT.value or not text or not text.strip():
                break
            if self._handoff is not None and await self._handoff.csat_expected(
                conversation_id, text
            ) is not None:
                break
            if history is None:
                history = [] if fresh else await self._memory.recent(
                    conversation_id, since=snapshot.context_started_at
                )
            try:
                with structlog.contextvars.bound_contextvars(
                    conversation_id=str(conversation_id), message_id=str(pending.id)
                ), self._metrics.stage_seconds.labels("decide").time():
                    decision = await self._responder.respond(
                        ResponseRequest(
                            conversation_id=conversation_id, message_id=pending.id,
                            text=text, history=[*history, *_turns(run, now)],
                            contact_name=snapshot.contact_name,
                        )
                    )
            except Exception:
                break  # one by one: the failure is recorded (and retried) there
            if decision.escalate or decision.opt_out or decision.csat_score is not None:
                decided = decision
                break
            run.append((pending, decision))
        if not run:
            return 0, snapshot, decided
        marked = await self._commit_run(conversation_id, run, now=now, fresh=fresh)
        if not marked:
            # An agent took the conversation meanwhile (or another run did the work):
            # one by one, from the state as it is now.
            return 0, await self._snapshot(conversation_id), None
        done = [(pending, decision) for pending, decision in run if pending.id in marked]
        await self._after_run(conversation_id, done, list(marked.values()), now=now, fresh=fresh)
        after = replace(
            snapshot, last_inbound_at=now,
            context_started_at=now if fresh else snapshot.context_started_at,
        )
        # every message of the run is done: marked here, or (rarely) by another run
        return len(run), after, decided

    async def _after_run(
        self,
        conversation_id: uuid.UUID,
        run: list[tuple[_Pending, Decision]],
        latencies: list[float],
        *,
        now: datetime,
        fresh: bool,
    ) -> None:
        """After a run's commit: metrics, memory (one write) and notifications (one)."""
        for latency in latencies:
            self._metrics.processing_seconds.observe(latency)
        if fresh:
            await self._memory.forget(conversation_id)
        await self._memory.append(conversation_id, _turns(run, now))
        events: list[tuple[str, dict[str, Any]]] = []
        for pending, decision in run:
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
        await self._events.publish_many(events)

    async def _commit_run(
        self,
        conversation_id: uuid.UUID,
        run: list[tuple[_Pending, Decision]],
        *,
        now: datetime,
        fresh: bool,
    ) -> dict[uuid.UUID, float]:
        """Commit a run in one statement (atomic on its own): only while the bot still owns
        the conversation (its row locked), only messages still unprocessed, and replies
        only for the messages this statement marked. Returns the marked messages with
        their latencies: none when an agent took the conversation; fewer than the run
        when another run (a stalled job's double) had already processed some."""
        replies = [
            (pending.id, position, reply)
            for pending, decision in run
            for position, reply in enumerate(decision.replies)
        ]
        params = {
            "conversation_id": conversation_id,
            "ids": [pending.id for pending, _ in run],
            "intents": [decision.intent for _, decision in run],
            "confidences": [decision.confidence for _, decision in run],
            "sources": [json.dumps(list(decision.sources)) for _, decision in run],
            "reply_ids": [uuid.uuid4() for _ in replies],
            "reply_to": [message_id for message_id, _, _ in replies],
            "reply_seq": [position for _, position, _ in replies],
            "reply_text": [reply for _, _, reply in replies],
            "now": now, "fresh": fresh, "last_intent": run[-1][1].intent,
        }
        async with self._fast.connection() as connection:
            cursor = await connection.execute(_COMMIT_RUN_SQL, params)
            return {row[0]: float(row[1]) for row in await cursor.fetchall()}

    async def _process_guarded(
        self, pending: _Pending, snapshot: _Snapshot, decided: Decision | None = None
    ) -> _Snapshot:
        try:
            return await self._process(pending, snapshot, decided)
        except Exception as exc:
            # The job boundary: record the attempt, park the message after the last
            # one so the conversation moves on, otherwise let the job retry it.
            self._metrics.failures.inc()
            parked = await self._record_failure(pending, exc)
            log.exception("pipeline.failed", attempts=pending.attempts + 1, parked=parked)
            if not parked:
                raise
            return await self._snapshot(pending.conversation_id)

    async def _process(
        self, pending: _Pending, snapshot: _Snapshot, decided: Decision | None = None
    ) -> _Snapshot:
        if pending.kind == MessageKind.VOICE.value and pending.transcript is None:
            pending = await self._transcribe(pending)
        for _ in range(3):
            now = self._clock()
            fresh = snapshot.last_inbound_at is None or now - snapshot.last_inbound_at > self._ttl
            owner = snapshot.owner
            if owner is Owner.CLOSED:
                owner = next_owner(owner, OwnerEvent.CUSTOMER_WRITES)
            decision = None
            if bot_may_reply(owner):
                decision = decided or await self._csat_answer(pending) or await self._decide(
                    pending, snapshot, fresh
                )
            decided = None  # taken for the state it was decided in: decide again after
            committed = await self._commit(pending, decision, now=now, fresh=fresh)
            if committed is not None:
                return replace(
                    snapshot,
                    owner=committed,
                    last_inbound_at=now,
                    context_started_at=now if fresh else snapshot.context_started_at,
                )
            snapshot = await self._snapshot(pending.conversation_id)
        raise RuntimeError("conversation owner kept changing while processing")

    async def _snapshot(self, conversation_id: uuid.UUID) -> _Snapshot:
        async with self._sessions() as session:
            return await _read_snapshot(session, conversation_id)

    async def _transcribe(self, pending: _Pending) -> _Pending:
        """Transcribe a voice note and store the text in its own transaction, before deciding:
        a retried job finds the transcript and never transcribes twice."""
        ref = pending.media_ref
        if self._speech is None or self._media is None or ref is None:
            return replace(pending, voice_problem="corrupt" if ref is None else "failed")
        if ref.key is None:  # refused by the media checks, or the download failed
            log.warning(
                "voice.not_stored", message_id=str(pending.id),
                conversation_id=str(pending.conversation_id),
            )
            return replace(pending, voice_problem="refused")
        usage = {"message_id": pending.id, "conversation_id": pending.conversation_id}
        try:
            transcript = await self._speech.transcribe_media(self._media, ref)
        except AudioUnusable as exc:
            log.warning(
                "voice.unusable", code=exc.code, reason=exc.reason, media_key=ref.key,
                message_id=str(pending.id), conversation_id=str(pending.conversation_id),
            )
            await self._record_transcription(
                **usage, backend="none", outcome="unusable", error=f"{exc.code}: {exc.reason}"
            )
            return replace(pending, voice_problem=exc.code)
        except TranscriberUnavailable as exc:
            log.error(
                "voice.transcriber_unavailable", backend=exc.backend, error=str(exc),
                message_id=str(pending.id), conversation_id=str(pending.conversation_id),
            )
            await self._record_transcription(
                **usage, backend=exc.backend, outcome="failed", error=str(exc)[:500]
            )
            return replace(pending, voice_problem="failed")
        async with self._sessions() as session, session.begin():
            done = await session.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id == pending.id, MESSAGES.c.transcript.is_(None))
                .values(transcript=transcript.text)
            )
            if done.rowcount:  # type: ignore[attr-defined]  # once per voice note
                await session.execute(insert(TranscriptionRecord).values(
                    **usage, backend=transcript.backend[:100], outcome="ok",
                    audio_seconds=transcript.duration, elapsed_seconds=transcript.elapsed,
                ))
        return replace(pending, transcript=transcript.text)

    async def _record_transcription(self, **values: object) -> None:
        """The transcription log (analytics: volume and audio minutes per backend)."""
        async with self._sessions() as session, session.begin():
            await session.execute(insert(TranscriptionRecord).values(**values))

    async def _csat_answer(self, pending: _Pending) -> Decision | None:
        """The customer's next message after the CSAT question, when it is a 1-5 score."""
        if self._handoff is None:
            return None
        answer = await self._handoff.csat_expected(
            pending.conversation_id, pending.text or pending.transcript
        )
        if answer is None:
            return None
        score, language = answer
        return Decision(
            "csat", 1.0, (self._handoff.csat_thanks(language),), language=language,
            csat_score=score,
        )

    async def _decide(self, pending: _Pending, snapshot: _Snapshot, fresh: bool) -> Decision:
        history = (
            []
            if fresh
            else await self._memory.recent(
                pending.conversation_id, since=snapshot.context_started_at
            )
        )
        text = pending.text or pending.transcript
        if pending.kind in (MessageKind.IMAGE.value, MessageKind.DOCUMENT.value):
            return _media_decision(pending, history)
        if pending.kind == MessageKind.VOICE.value and not text:
            return _voice_problem_decision(pending, history)
        if not text or not text.strip():
            return Decision(Intent.OTHER.value, 0.0, (t("unsupported"),))
        with self._metrics.stage_seconds.labels("decide").time():
            return await self._responder.respond(
                ResponseRequest(
                    conversation_id=pending.conversation_id, message_id=pending.id, text=text,
                    history=history, contact_name=snapshot.contact_name,
                )
            )

    async def _commit(
        self, pending: _Pending, decision: Decision | None, *, now: datetime, fresh: bool
    ) -> Owner | None:
        """Write the outcome atomically; the new owner, or None when the owner changed
        under us (decide again)."""
        async with self._sessions() as session, session.begin():
            conversation = (
                await session.execute(
                    select(
                        CONVERSATIONS.c.owner, CONVERSATIONS.c.channel,
                        CONVERSATIONS.c.contact_id,
                    )
                    .where(CONVERSATIONS.c.id == pending.conversation_id)
                    .with_for_update()
                )
            ).one()
            owner = Owner(conversation.owner)
            if owner is Owner.CLOSED:
                owner = next_owner(owner, OwnerEvent.CUSTOMER_WRITES)
            if (decision is not None) != bot_may_reply(owner):
                return None
            if decision is not None and self._handoff is not None:
                # the customer's next message closes an open CSAT question (nothing is
                # written yet, so returning None here leaves no trace)
                answered = await self._handoff.csat_in(
                    session, pending.conversation_id, decision.csat_score
                )
                if decision.csat_score is not None and not answered:
                    return None  # answered meanwhile by another run: decide again
            latency = (
                await session.execute(
                    update(MESSAGES)
                    .where(MESSAGES.c.id == pending.id, MESSAGES.c.status == "received")
                    .values(
                        status="processed", processed_at=func.clock_timestamp(), error=None,
                        intent=decision.intent if decision else None,
                        confidence=decision.confidence if decision else None,
                        escalated=decision.escalate if decision else False,
                        sources=list(decision.sources) if decision else [],
                    )
                    .returning(
                        func.extract("epoch", MESSAGES.c.processed_at - MESSAGES.c.created_at)
                    )
                )
            ).scalar_one_or_none()
            if latency is None:
                return owner  # another run already finished it
            changes: dict[str, object] = {"last_inbound_at": now, "last_message_at": now}
            if fresh:
                changes["context_started_at"] = now
            if decision is not None:
                owner, sent = await self._apply(
                    session, conversation.channel, conversation.contact_id, pending, decision,
                    owner, changes,
                )
                decision = replace(decision, replies=sent)
            else:
                if _asks_opt_out(pending):
                    # A human owns the chat, so the bot stays silent (the agent sees the
                    # message), but "BAJA" still stops every campaign message from now on.
                    await session.execute(
                        update(CONTACTS).where(CONTACTS.c.id == conversation.contact_id)
                        .values(opted_out=True)
                    )
                if self._handoff is not None:
                    notices = await self._handoff.silenced_in(
                        session, pending.conversation_id, owner
                    )
                    await self._add_replies(
                        session, conversation.channel, pending, notices, Author.SYSTEM
                    )
            changes["owner"] = owner.value
            await session.execute(
                update(CONVERSATIONS)
                .where(CONVERSATIONS.c.id == pending.conversation_id)
                .values(**changes)
            )
        self._metrics.processing_seconds.observe(float(latency))
        await self._after_commit(pending, decision, owner, now=now, fresh=fresh)
        return owner

    async def _apply(
        self,
        session: AsyncSession,
        channel: str,
        contact_id: uuid.UUID,
        pending: _Pending,
        decision: Decision,
        owner: Owner,
        changes: dict[str, object],
    ) -> tuple[Owner, tuple[str, ...]]:
        replies = decision.replies
        if decision.escalate and self._handoff is not None:
            # the handoff's honest notice (expected wait, or out of office) replaces the
            # bot's own handoff line: one message, never one on top of the other
            replies, owner = await self._handoff.escalate_in(
                session, pending.conversation_id, reason=decision.reason,
                intent=decision.intent, language=decision.language,
                text_hint=pending.text or pending.transcript or "",
            )
            if decision.reason == MEDIA_NEEDS_PERSON and replies:
                # still one message: say the photo/document arrived, then the notice
                ack = t(f"media_received_{pending.kind}", decision.language)
                replies = (f"{ack}\n\n{replies[0]}", *replies[1:])
        elif decision.escalate:
            owner = next_owner(owner, OwnerEvent.ESCALATE)
            changes["owner_reason"] = decision.reason
            changes["owner_changed_at"] = func.now()
        await self._add_replies(session, channel, pending, replies, Author.BOT)
        changes["last_intent"] = decision.intent
        if decision.opt_out:
            await session.execute(
                update(CONTACTS).where(CONTACTS.c.id == contact_id).values(opted_out=True)
            )
        return owner, replies

    @staticmethod
    async def _add_replies(
        session: AsyncSession,
        channel: str,
        pending: _Pending,
        replies: tuple[str, ...],
        author: Author,
    ) -> None:
        if not replies:
            return
        await session.execute(
            insert(MESSAGES),
            [
                {
                    "id": uuid.uuid4(), "conversation_id": pending.conversation_id,
                    "direction": "out", "author": author.value,
                    "kind": MessageKind.TEXT.value, "channel": channel, "text": reply,
                    "status": "pending", "in_reply_to": pending.id, "reply_seq": position,
                }
                for position, reply in enumerate(replies)
            ],
        )

    async def _after_commit(
        self,
        pending: _Pending,
        decision: Decision | None,
        owner: Owner,
        *,
        now: datetime,
        fresh: bool,
    ) -> None:
        if fresh:
            await self._memory.forget(pending.conversation_id)
        turns = [Turn("customer", pending.text or pending.transcript or "", now)]
        if decision is not None:
            turns += [Turn("bot", reply, now) for reply in decision.replies]
            self._metrics.intents.labels(decision.intent).inc()
            if decision.escalate:
                self._metrics.escalations.labels(decision.reason or "unknown").inc()
        else:
            self._metrics.silenced.labels(owner.value).inc()
        await self._memory.append(pending.conversation_id, turns)
        payload = {
            "message_id": str(pending.id), "conversation_id": str(pending.conversation_id),
            "owner": owner.value, "bot_replied": decision is not None,
        }
        await self._events.publish(f"processed:{pending.id}", payload)
        await self._events.publish("conversations", payload)
        log.info(
            "pipeline.processed", intent=decision.intent if decision else None,
            owner=owner.value, replies=len(decision.replies) if decision else 0,
            escalated=bool(decision and decision.escalate),
        )

    async def _record_failure(self, pending: _Pending, exc: Exception) -> bool:
        async with self._sessions() as session, session.begin():
            attempts = (
                await session.execute(
                    update(MESSAGES)
                    .where(MESSAGES.c.id == pending.id, MESSAGES.c.status == "received")
                    .values(attempts=MESSAGES.c.attempts + 1, error=f"{type(exc).__name__}: {exc}")
                    .returning(MESSAGES.c.attempts)
                )
            ).scalar_one_or_none()
            if attempts is None or attempts < self._max_attempts:
                return False
            await session.execute(
                update(MESSAGES).where(MESSAGES.c.id == pending.id).values(status="failed")
            )
        self._metrics.parked.inc()
        return True


def _language(texts: list[str]) -> str:
    return detect_language(" ".join(texts), "es")


def _media_decision(pending: _Pending, history: list[Turn]) -> Decision:
    """A photo or document: the bot cannot act on it, so acknowledge and queue for a person."""
    language = _language(
        [turn.text for turn in history if turn.role == "customer"] + [pending.text or ""]
    )
    if not (pending.media or {}).get("key"):
        # Refused (too big, not what it claimed, a decompression bomb) or never downloaded:
        # nothing to show a person, so ask the customer to send it again.
        return Decision(
            Intent.OTHER.value, 1.0, (t(f"media_refused_{pending.kind}", language),),
            language=language,
        )
    ack = t(f"media_received_{pending.kind}", language)
    return Decision(
        Intent.OTHER.value, 1.0, (f"{ack} {t('media_review', language)}",),
        escalate=True, reason=MEDIA_NEEDS_PERSON, language=language,
    )


def _voice_problem_decision(pending: _Pending, history: list[Turn]) -> Decision:
    """A voice note we could not understand: say so plainly; a failing transcriber escalates."""
    language = _language([turn.text for turn in history if turn.role == "customer"])
    problem = pending.voice_problem or "corrupt"
    if problem == "failed":
        return Decision(
            Intent.OTHER.value, 0.0, (t("voice_failed", language),), escalate=True,
            reason="transcription_failed", language=language,
        )
    return Decision(
        Intent.OTHER.value, 0.0, (t(f"voice_{problem}", language),), language=language,
    )
def _asks_opt_out(pending: _Pending) -> bool:
    routed = route_rules(pending.text or pending.transcript or "")
    return routed is not None and routed.intent is Intent.OPT_OUT
