"""The commit of one message, on its own: in one transaction the replies go to the outbox,
the owner moves if the bot escalates, and the message is marked processed; then the
memory, metrics and notifications. A failed attempt is recorded here too, and the
message parked after the last one."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.responder import Decision
from bot.conversation.pipeline.deciding import MEDIA_NEEDS_PERSON, asks_opt_out
from bot.conversation.pipeline.state import Pending
from bot.i18n import t
from bot.infra.redis_adapter import ConversationMemory, EventBus
from bot.logs import get_logger
from bot.messages import Author, MessageKind, Turn
from bot.metrics import Metrics
from handoff.conversations import CONTACTS, CONVERSATIONS, MESSAGES
from handoff.ownership import Owner, OwnerEvent, bot_may_reply, next_owner
from handoff.service import HandoffService

log = get_logger("atiende.pipeline")


class Committer:
    """Writes the outcome of one message (or of its failed attempt)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        memory: ConversationMemory,
        events: EventBus,
        metrics: Metrics,
        max_attempts: int,
        handoff: HandoffService | None,
    ) -> None:
        self._sessions = sessions
        self._memory = memory
        self._events = events
        self._metrics = metrics
        self._max_attempts = max_attempts
        self._handoff = handoff

    async def commit(
        self, pending: Pending, decision: Decision | None, *, now: datetime, fresh: bool
    ) -> Owner | None:
        """Write the outcome atomically; the new owner, or None when the owner changed
        under us (decide again)."""
        async with self._sessions() as session, session.begin():
            conversation = await self._lock(session, pending.conversation_id)
            owner = Owner(conversation.owner)
            if owner is Owner.CLOSED:
                owner = next_owner(owner, OwnerEvent.CUSTOMER_WRITES)
            if not _fits(decision, owner):
                return None  # the owner changed since the decision: decide again
            if decision is not None and self._handoff is not None:
                # the customer's next message closes an open CSAT question (nothing is
                # written yet, so returning None here leaves no trace)
                answered = await self._handoff.csat_in(
                    session, pending.conversation_id, decision.csat_score
                )
                if decision.csat_score is not None and not answered:
                    return None  # answered meanwhile by another run: decide again
            latency = await self._mark(session, pending, decision)
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
                await self._silenced(
                    session, conversation.channel, conversation.contact_id, pending, owner
                )
            changes["owner"] = owner.value
            await session.execute(
                update(CONVERSATIONS)
                .where(CONVERSATIONS.c.id == pending.conversation_id)
                .values(**changes)
            )
        self._metrics.processing_seconds.observe(latency)
        await self._after_commit(pending, decision, owner, now=now, fresh=fresh)
        return owner

    async def record_failure(self, pending: Pending, exc: Exception) -> bool:
        """Count a failed attempt; after the last one park the message (failed). True when
        it was parked."""
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

    @staticmethod
    async def _lock(session: AsyncSession, conversation_id: uuid.UUID) -> Row[Any, Any, Any]:
        """The conversation's owner, channel and contact, its row locked until the commit."""
        return (
            await session.execute(
                select(
                    CONVERSATIONS.c.owner, CONVERSATIONS.c.channel,
                    CONVERSATIONS.c.contact_id,
                )
                .where(CONVERSATIONS.c.id == conversation_id)
                .with_for_update()
            )
        ).one()

    @staticmethod
    async def _mark(
        session: AsyncSession, pending: Pending, decision: Decision | None
    ) -> float | None:
        """Mark the message processed; its latency (accepted -> processed), or None when
        another run already did."""
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
        return None if latency is None else float(latency)

    async def _apply(
        self,
        session: AsyncSession,
        channel: str,
        contact_id: uuid.UUID,
        pending: Pending,
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

    async def _silenced(
        self,
        session: AsyncSession,
        channel: str,
        contact_id: uuid.UUID,
        pending: Pending,
        owner: Owner,
    ) -> None:
        """The bot may not reply: no answer, but an opt-out still counts and the handoff
        may send its notices."""
        if asks_opt_out(pending):
            # A human owns the chat, so the bot stays silent (the agent sees the
            # message), but "BAJA" still stops every campaign message from now on.
            await session.execute(
                update(CONTACTS).where(CONTACTS.c.id == contact_id).values(opted_out=True)
            )
        if self._handoff is not None:
            notices = await self._handoff.silenced_in(session, pending.conversation_id, owner)
            await self._add_replies(session, channel, pending, notices, Author.SYSTEM)

    @staticmethod
    async def _add_replies(
        session: AsyncSession,
        channel: str,
        pending: Pending,
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
        pending: Pending,
        decision: Decision | None,
        owner: Owner,
        *,
        now: datetime,
        fresh: bool,
    ) -> None:
        """After the commit: memory, metrics and notifications."""
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


def _fits(decision: Decision | None, owner: Owner) -> bool:
    """The decision was taken for this owner: a reply only where the bot may give it (a
    queued conversation only takes an answer from the knowledge base), silence only
    where it may not."""
    if decision is None:
        return not bot_may_reply(owner)
    return bot_may_reply(owner, from_knowledge=decision.while_queued)
