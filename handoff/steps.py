"""The steps every ownership change is made of, and the work left for after its commit.

Every change locks the conversation's row (``Steps.lock``) and moves its owner through
``next_owner`` (``Steps.move``); the pipeline's own commit takes the same lock, so a
claim that lands while the bot is thinking silences the bot. Effects leave as rows
(outbox messages, tickets) in the same transaction; ``AfterCommit`` forgets, sends and
notifies once the transaction committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.conversations import Conversation, Message
from handoff.errors import Conflict, ConversationNotFound
from handoff.hours import BusinessHours, LiveHours
from handoff.ownership import Owner, OwnerEvent, TransitionRefused, next_owner
from handoff.ports import Clock, EventPublisher, MemoryReset, OutboxFlusher
from handoff.tables import Ticket


class InboxEvents:
    """Tells every inbox (every app process) that a conversation or an agent changed."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def conversation(self, conversation_id: uuid.UUID, kind: str) -> None:
        payload: dict[str, Any] = {"conversation_id": str(conversation_id), "kind": kind}
        await self._publisher.publish("conversations", payload)

    async def agent(self, agent_id: uuid.UUID, *, online: bool) -> None:
        await self._publisher.publish("agents", {"agent_id": str(agent_id), "online": online})


@dataclass
class After:
    """Work to do once the transaction committed."""

    conversations: set[uuid.UUID] = field(default_factory=set)
    forget: set[uuid.UUID] = field(default_factory=set)
    send: set[uuid.UUID] = field(default_factory=set)
    sweep: bool = False


class AfterCommit:
    """Runs an ``After``: forget the bot's memory, send the outbox, sweep the backlog (so a
    freed agent gets the next conversation), then tell the inboxes."""

    def __init__(
        self,
        *,
        events: InboxEvents,
        outbox: OutboxFlusher,
        memory: MemoryReset,
        sweep: Callable[[], Awaitable[int]],
    ) -> None:
        self._events = events
        self._outbox = outbox
        self._memory = memory
        self._sweep = sweep

    async def run(self, after: After) -> None:
        for conversation_id in after.forget:
            await self._memory.forget(conversation_id)
        for conversation_id in after.send:
            await self._outbox.send_pending(conversation_id)
        if after.sweep:
            await self._sweep()
        for conversation_id in after.conversations:
            await self._events.conversation(conversation_id, "owner")


class Steps:
    """Lock, move, ticket and outbox steps, run inside the caller's transaction."""

    def __init__(self, *, clock: Clock, hours: BusinessHours | LiveHours) -> None:
        self._clock = clock
        self._hours = hours

    async def lock(self, session: AsyncSession, conversation_id: uuid.UUID) -> Conversation:
        conv = (
            await session.execute(
                select(Conversation).where(Conversation.id == conversation_id).with_for_update()
            )
        ).scalar_one_or_none()
        return _live(conv)

    async def get(self, session: AsyncSession, conversation_id: uuid.UUID) -> Conversation:
        return _live(await session.get(Conversation, conversation_id))

    def move(self, conv: Conversation, event: OwnerEvent, *, reason: str) -> None:
        try:
            new = next_owner(Owner(conv.owner), event)
        except TransitionRefused as exc:
            raise Conflict(f"cannot_{event.value}", str(exc)) from exc
        conv.owner = new.value
        conv.owner_reason = reason
        conv.owner_changed_at = self._clock()

    async def open_ticket(
        self, session: AsyncSession, conversation_id: uuid.UUID
    ) -> Ticket | None:
        return (
            await session.execute(
                select(Ticket).where(Ticket.conversation_id == conversation_id,
                                     Ticket.closed_at.is_(None))
            )
        ).scalar_one_or_none()

    async def ticket(
        self,
        session: AsyncSession,
        conv: Conversation,
        *,
        reason: str | None = None,
        intent: str | None = None,
        language: str | None = None,
    ) -> Ticket:
        """The conversation's open ticket, opened now if there is none."""
        ticket = await self.open_ticket(session, conv.id)
        if ticket is None:
            if language is None:
                language = await self._last_language(session, conv.id)
            ticket = Ticket(
                id=uuid.uuid4(), conversation_id=conv.id, reason=reason,
                intent=intent or conv.last_intent, language=language or "es",
                opened_at=self._clock(), csat_open=False,
            )
            session.add(ticket)
            # an earlier CSAT question is no longer open once a new handoff starts
            await session.execute(
                update(Ticket).where(Ticket.conversation_id == conv.id, Ticket.csat_open)
                .values(csat_open=False)
            )
            await session.flush()
        return ticket

    async def _last_language(self, session: AsyncSession, conversation_id: uuid.UUID) -> str:
        previous = (
            await session.execute(
                select(Ticket.language).where(Ticket.conversation_id == conversation_id)
                .order_by(Ticket.opened_at.desc()).limit(1)
            )
        ).scalar_one_or_none()
        return previous or "es"

    def first_response(self, ticket: Ticket, now: datetime) -> None:
        """The first human answer of the handoff starts now (unless one came before)."""
        if ticket.first_response_at is None:
            ticket.first_response_at = now
            ticket.first_response_seconds = self._hours.business_seconds(ticket.opened_at, now)

    def close_ticket(self, ticket: Ticket, outcome: str, by: uuid.UUID | None) -> None:
        now = self._clock()
        ticket.closed_at = now
        ticket.outcome = outcome
        ticket.closed_by = by
        ticket.resolution_seconds = self._hours.business_seconds(ticket.opened_at, now)

    async def fresh_context(self, session: AsyncSession, conv: Conversation) -> None:
        """The bot starts over; messages the human already saw are never answered by it."""
        conv.context_started_at = self._clock()
        await session.execute(
            update(Message)
            .where(Message.conversation_id == conv.id, Message.direction == "in",
                   Message.status == "received")
            .values(status="processed", processed_at=func.clock_timestamp(), escalated=False,
                    error="handled by an agent")
        )

    def enqueue(
        self,
        session: AsyncSession,
        conv: Conversation,
        body: str | None,
        *,
        author: str,
        author_id: uuid.UUID | None = None,
        kind: str = "text",
        media: dict[str, Any] | None = None,
    ) -> uuid.UUID:
        """An outbound message row; the outbox sends it after the commit."""
        message_id = uuid.uuid4()
        session.add(
            Message(
                id=message_id, conversation_id=conv.id, direction="out", author=author,
                kind=kind, channel=conv.channel, text=body, status="pending",
                author_id=author_id, media=media,
            )
        )
        return message_id


def _live(conv: Conversation | None) -> Conversation:
    """The conversation, unless it is missing or its customer's data was erased (an
    erasure locks the row first, so an action waiting on the lock sees it erased)."""
    if conv is None:
        raise ConversationNotFound()
    if conv.erased_at is not None:
        raise Conflict("erased", "the customer's data was erased; this conversation is "
                       "closed for good (a new message from them starts a new one)")
    return conv
