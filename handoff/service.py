"""The one service that moves conversations between the bot, the queue and the agents.

Every ownership change goes through here, under a row lock on the conversation and
through ``next_owner`` (``handoff.steps``); the pipeline's own commit takes the same
lock, so a claim that lands while the bot is thinking silences the bot. Effects leave
as rows (outbox messages, tickets) in the same transaction; notifications and sending
happen after the commit.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.access import require_holder, require_visible, visible_to_agent
from handoff.auth import Principal
from handoff.config import HandoffConfig
from handoff.conversations import Contact, Conversation
from handoff.errors import Conflict, InvalidInput, NotAllowed
from handoff.hours import BusinessHours
from handoff.notices import CustomerNotices
from handoff.ownership import Owner, OwnerEvent
from handoff.ports import Clock, EventPublisher, MemoryReset, OutboxFlusher
from handoff.roles import Role
from handoff.routing import Routing
from handoff.steps import After, AfterCommit, InboxEvents, Steps
from handoff.tables import AgentPresence, Label, Note, Team, Ticket, User
from handoff.texts import text as say

_CSAT = re.compile(r"^\s*([1-5])\s*(?:/\s*5)?\s*[.!⭐️👍🙂😊]*\s*$")
_ASSIGN_LOCK = 0x61746E64  # pg advisory lock key: assignments are serialized
MAX_TEXT = 4096
_MEDIA_KINDS = frozenset({"voice", "image", "document"})
MAX_LABEL = 40


def close_csat_sql(conversation_ids_sql: str) -> str:
    """For a caller's own statement (the worker's one-statement commit): the customers of
    the conversations ``conversation_ids_sql`` selects wrote again, so their open
    satisfaction questions are closed unanswered."""
    return (
        "UPDATE handoff_tickets SET csat_open = false "
        f"WHERE conversation_id IN ({conversation_ids_sql}) AND csat_open"
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an action did: the conversation's owner and agent afterwards."""

    conversation_id: uuid.UUID
    owner: Owner
    assigned_agent_id: uuid.UUID | None
    message_id: uuid.UUID | None = None


class HandoffService:
    """Claims, replies, transfers, releases, resolves, timeouts, assignment and notices."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        config: HandoffConfig,
        publisher: EventPublisher,
        outbox: OutboxFlusher,
        memory: MemoryReset,
        clock: Clock,
    ) -> None:
        self._sessions = sessions
        self.config = config
        self.hours = BusinessHours.parse(config.hours, config.timezone, config.holidays)
        self._clock = clock
        self._steps = Steps(clock=clock, hours=self.hours)
        self._events = InboxEvents(publisher)
        self._routing = Routing(sessions, config=config, clock=clock, events=self._events)
        self._notices = CustomerNotices(config=config, hours=self.hours)
        self._after = AfterCommit(events=self._events, outbox=outbox, memory=memory,
                                  sweep=self._routing.sweep)

    # ----------------------------------------------------------------- agent actions

    async def claim(self, actor: Principal, conversation_id: uuid.UUID) -> Outcome:
        """Take a queued conversation; a second agent at the same instant gets Conflict."""
        after = After()
        async with self._sessions() as session, session.begin():
            conv = await self._steps.lock(session, conversation_id)
            await require_visible(session, actor, conv)
            owner = Owner(conv.owner)
            if owner is Owner.HUMAN and conv.assigned_agent_id == actor.id:
                return _outcome(conv)  # a double click claims once
            if owner is Owner.HUMAN:
                name = await self._user_name(session, conv.assigned_agent_id)
                raise Conflict("already_claimed", f"already claimed by {name}")
            self._steps.move(conv, OwnerEvent.CLAIM, reason="claimed")
            conv.assigned_agent_id = actor.id
            ticket = await self._steps.ticket(session, conv)
            if ticket.claimed_at is None:
                ticket.claimed_at = self._clock()
            after.conversations.add(conv.id)
            outcome = _outcome(conv)
        await self._after.run(after)
        return outcome

    async def reply(
        self,
        actor: Principal,
        conversation_id: uuid.UUID,
        body: str | None,
        *,
        kind: str = "text",
        media: dict[str, Any] | None = None,
    ) -> Outcome:
        """Send ``body`` to the customer as the agent, through the outbox; or stored media
        (``kind`` voice, image or document, ``media`` its stored reference) with an optional
        caption."""
        return await self._reply(
            actor, conversation_id, body, check_visible=True, kind=kind, media=media
        )

    async def _reply(
        self,
        actor: Principal,
        conversation_id: uuid.UUID,
        body: str | None,
        *,
        check_visible: bool,
        kind: str = "text",
        media: dict[str, Any] | None = None,
    ) -> Outcome:
        if media is None:
            body = _clean_text(body or "")
        elif kind not in _MEDIA_KINDS or not media.get("key"):
            raise InvalidInput("media", "media must be a stored voice note, image or document")
        else:
            body = _clean_text(body) if body and body.strip() else None
        after = After()
        async with self._sessions() as session, session.begin():
            conv = await self._steps.lock(session, conversation_id)
            if check_visible:
                await require_visible(session, actor, conv)
            owner = Owner(conv.owner)
            if owner is Owner.CLOSED:
                raise Conflict("closed", "the conversation is closed; it reopens when the "
                               "customer writes")
            if owner is Owner.HUMAN and conv.assigned_agent_id not in (None, actor.id):
                name = await self._user_name(session, conv.assigned_agent_id)
                raise Conflict("not_yours", f"the conversation belongs to {name}")
            if owner is Owner.QUEUED:
                self._steps.move(conv, OwnerEvent.CLAIM, reason="claimed")
            elif owner is Owner.BOT:
                self._steps.move(conv, OwnerEvent.TAKEOVER, reason="agent_takeover")
            conv.assigned_agent_id = actor.id
            ticket = await self._steps.ticket(session, conv, reason=conv.owner_reason)
            message_id = self._steps.enqueue(
                session, conv, body, author="agent", author_id=actor.id, kind=kind, media=media
            )
            now = self._clock()
            ticket.claimed_at = ticket.claimed_at or now
            self._steps.first_response(ticket, now)
            conv.last_message_at = now
            after.conversations.add(conv.id)
            after.send.add(conv.id)
            outcome = _outcome(conv, message_id)
        await self._after.run(after)
        return outcome

    async def start(
        self,
        actor: Principal,
        *,
        phone: str,
        body: str,
        channel: str,
        account: str,
        name: str | None = None,
    ) -> Outcome:
        """An agent writes first to a customer; the bot stays out of it."""
        body = _clean_text(body)
        async with self._sessions() as session, session.begin():
            contact_id = (
                await session.execute(select(Contact.id).where(Contact.phone_e164 == phone))
            ).scalar_one_or_none()
            if contact_id is None:
                contact_id = uuid.uuid4()
                session.add(Contact(id=contact_id, phone_e164=phone, name=name))
                await session.flush()
            conv_id = (
                await session.execute(
                    select(Conversation.id).where(
                        Conversation.contact_id == contact_id,
                        Conversation.channel == channel,
                        Conversation.account == account,
                    )
                )
            ).scalar_one_or_none()
            if conv_id is None:
                conv_id = uuid.uuid4()
                session.add(
                    Conversation(
                        id=conv_id, contact_id=contact_id, channel=channel, account=account,
                        owner=Owner.BOT.value, context_started_at=self._clock(),
                    )
                )
                await session.flush()
        return await self._reply(actor, conv_id, body, check_visible=False)

    async def release(self, actor: Principal, conversation_id: uuid.UUID) -> Outcome:
        """Give a claimed conversation back to the queue (someone else may take it)."""
        after = After(sweep=True)
        async with self._sessions() as session, session.begin():
            conv = await self._steps.lock(session, conversation_id)
            await require_visible(session, actor, conv)
            require_holder(actor, conv)
            self._steps.move(conv, OwnerEvent.RELEASE, reason="released")
            conv.assigned_agent_id = None
            after.conversations.add(conv.id)
            outcome = _outcome(conv)
        await self._after.run(after)
        return outcome

    async def transfer(
        self,
        actor: Principal,
        conversation_id: uuid.UUID,
        *,
        agent_id: uuid.UUID | None = None,
        team_id: uuid.UUID | None = None,
    ) -> Outcome:
        """Hand the conversation to another agent (stays human) or to another team's queue."""
        if (agent_id is None) == (team_id is None):
            raise InvalidInput("transfer_target", "give exactly one of agent_id or team_id")
        after = After()
        async with self._sessions() as session, session.begin():
            conv = await self._steps.lock(session, conversation_id)
            await require_visible(session, actor, conv)
            if actor.role is Role.AGENT:
                require_holder(actor, conv)
            owner = Owner(conv.owner)
            if owner not in (Owner.QUEUED, Owner.HUMAN):
                raise Conflict("not_in_handoff", f"cannot transfer a conversation owned by "
                               f"{owner.value}")
            ticket = await self._steps.ticket(session, conv)
            if agent_id is not None:
                await self._require_agent(session, agent_id)
                if owner is Owner.HUMAN:
                    self._steps.move(conv, OwnerEvent.TAKEOVER, reason="transferred")
                conv.assigned_agent_id = agent_id
                ticket.assigned_at = self._clock()
            else:
                if await session.get(Team, team_id) is None:
                    raise InvalidInput("unknown_team", "no such team")
                if owner is Owner.HUMAN:
                    self._steps.move(conv, OwnerEvent.RELEASE, reason="transferred")
                conv.assigned_agent_id = None
                ticket.team_id = team_id
                await self._routing.assign(session, conv, ticket)
            after.conversations.add(conv.id)
            outcome = _outcome(conv)
        await self._after.run(after)
        return outcome

    async def reassign(
        self, actor: Principal, conversation_id: uuid.UUID, agent_id: uuid.UUID
    ) -> Outcome:
        """A supervisor gives a queued or claimed conversation to ``agent_id``."""
        if actor.role is Role.AGENT:
            raise NotAllowed("supervisors_only", "only supervisors and admins reassign")
        return await self.transfer(actor, conversation_id, agent_id=agent_id)

    async def resolve(self, actor: Principal, conversation_id: uuid.UUID) -> Outcome:
        """Done: back to the bot with a fresh context, the ticket closed, CSAT asked."""
        after = After(sweep=True)
        async with self._sessions() as session, session.begin():
            conv = await self._steps.lock(session, conversation_id)
            await require_visible(session, actor, conv)
            owner = Owner(conv.owner)
            if owner is Owner.HUMAN and actor.role is Role.AGENT:
                require_holder(actor, conv)
            self._steps.move(conv, OwnerEvent.RESOLVE, reason="resolved")
            ticket = await self._steps.ticket(session, conv)
            self._steps.close_ticket(ticket, "resolved", actor.id)
            conv.assigned_agent_id = None
            if self.config.csat:
                self._steps.enqueue(
                    session, conv, say("csat_question", ticket.language), author="system"
                )
                ticket.csat_asked_at = self._clock()
                ticket.csat_open = True
                after.send.add(conv.id)
            await self._steps.fresh_context(session, conv)
            after.forget.add(conv.id)
            after.conversations.add(conv.id)
            outcome = _outcome(conv)
        await self._after.run(after)
        return outcome

    async def add_note(self, actor: Principal, conversation_id: uuid.UUID, body: str) -> uuid.UUID:
        body = _clean_text(body)
        async with self._sessions() as session, session.begin():
            conv = await self._steps.get(session, conversation_id)
            await require_visible(session, actor, conv)
            note = Note(id=uuid.uuid4(), conversation_id=conv.id, author_id=actor.id, text=body)
            session.add(note)
        await self._events.conversation(conversation_id, "note")
        return note.id

    async def set_labels(
        self, actor: Principal, conversation_id: uuid.UUID, labels: Sequence[str]
    ) -> list[str]:
        clean = sorted({label.strip().lower() for label in labels if label.strip()})
        if any(len(label) > MAX_LABEL for label in clean):
            raise InvalidInput("label_too_long", f"labels have at most {MAX_LABEL} characters")
        async with self._sessions() as session, session.begin():
            conv = await self._steps.get(session, conversation_id)
            await require_visible(session, actor, conv)
            await session.execute(delete(Label).where(Label.conversation_id == conv.id))
            session.add_all(Label(conversation_id=conv.id, label=label) for label in clean)
        await self._events.conversation(conversation_id, "labels")
        return clean

    async def set_presence(
        self, actor: Principal, *, online: bool, capacity: int | None = None
    ) -> None:
        """An agent goes online (the unassigned backlog is swept to them) or offline."""
        if capacity is not None and not 1 <= capacity <= 100:
            raise InvalidInput("capacity", "capacity must be between 1 and 100")
        async with self._sessions() as session, session.begin():
            presence = await session.get(AgentPresence, actor.id, with_for_update=True)
            if presence is None:
                presence = AgentPresence(
                    user_id=actor.id, capacity=self.config.default_capacity, online=False
                )
                session.add(presence)
            presence.online = online
            presence.changed_at = self._clock()
            if capacity is not None:
                presence.capacity = capacity
        if online:
            await self.sweep()
        await self._events.agent(actor.id, online=online)

    # ----------------------------------------------------------------- hooks for the bot

    async def escalate_in(
        self,
        session: AsyncSession,
        conversation_id: uuid.UUID,
        *,
        reason: str | None,
        intent: str | None,
        language: str,
        text_hint: str = "",
    ) -> tuple[tuple[str, ...], Owner]:
        """The bot hands over (inside the pipeline's locked transaction).

        Returns the customer notice that replaces the bot's own handoff line (the
        expected wait in business hours, the out-of-office reply outside them) and
        the new owner.
        """
        conv = await self._steps.lock(session, conversation_id)
        self._steps.move(conv, OwnerEvent.ESCALATE, reason=reason or "escalated")
        ticket = await self._steps.ticket(
            session, conv, reason=reason, intent=intent, language=language
        )
        if ticket.team_id is None:
            ticket.team_id = await self._routing.team_for(session, reason, intent, text_hint)
        agent = await self._routing.assign(session, conv, ticket)
        now = self._clock()
        if not self.hours.is_open(now):
            ticket.out_of_office_sent_at = now
            return (self._notices.out_of_office(language, now),), Owner(conv.owner)
        return (await self._notices.queued(session, ticket, agent, language),), Owner(conv.owner)

    async def takeover_in(self, session: AsyncSession, conversation_id: uuid.UUID) -> None:
        """A message typed on the business phone: a human has the conversation now."""
        conv = await self._steps.lock(session, conversation_id)
        self._steps.move(conv, OwnerEvent.TAKEOVER, reason="owner_phone")
        ticket = await self._steps.ticket(session, conv, reason="owner_phone")
        now = self._clock()
        self._steps.first_response(ticket, now)

    async def silenced_in(
        self, session: AsyncSession, conversation_id: uuid.UUID, owner: Owner
    ) -> tuple[str, ...]:
        """A customer wrote while the conversation waits in the queue: the out-of-office
        reply, once per handoff, outside business hours; nothing otherwise (and never once
        a person has it: whoever answers at night is not "closed")."""
        now = self._clock()
        if self.hours.is_open(now) or owner is not Owner.QUEUED:
            return ()
        ticket = await self._steps.open_ticket(session, conversation_id)
        if ticket is None or ticket.out_of_office_sent_at is not None:
            return ()
        ticket.out_of_office_sent_at = now
        return (self._notices.out_of_office(ticket.language, now),)

    async def csat_expected(
        self, conversation_id: uuid.UUID, body: str | None
    ) -> tuple[int, str] | None:
        """(score, language) when ``body`` answers an open CSAT question of the conversation."""
        match = _CSAT.match(body or "")
        if match is None:
            return None
        async with self._sessions() as session:
            language = (
                await session.execute(
                    select(Ticket.language).where(
                        Ticket.conversation_id == conversation_id,
                        Ticket.csat_open,
                        Ticket.csat_asked_at
                        > self._clock() - timedelta(hours=self.config.csat_window_hours),
                    )
                )
            ).scalars().first()
        return (int(match.group(1)), language) if language else None

    async def csat_in(
        self, session: AsyncSession, conversation_id: uuid.UUID, score: int | None
    ) -> bool:
        """Close the CSAT window (the customer's next message after the question); store
        ``score`` when given. False when there was no open question to answer."""
        ticket = (
            await session.execute(
                select(Ticket).where(Ticket.conversation_id == conversation_id, Ticket.csat_open)
                .with_for_update()
            )
        ).scalars().first()
        if ticket is None:
            return False
        ticket.csat_open = False
        if score is not None:
            ticket.csat_score = score
            ticket.csat_answered_at = self._clock()
        return True

    def csat_thanks(self, language: str) -> str:
        return say("csat_thanks", language)

    # ----------------------------------------------------------------- periodic work

    async def timeout_idle(self) -> int:
        """Idle human conversations go back to the bot with a notice; returns how many."""
        cutoff = self._clock() - timedelta(minutes=self.config.idle_timeout_minutes)
        last = func.greatest(
            func.coalesce(Conversation.last_message_at, Conversation.owner_changed_at),
            func.coalesce(Conversation.owner_changed_at, Conversation.last_message_at),
        )
        async with self._sessions() as session:
            ids = (
                await session.execute(
                    select(Conversation.id).where(Conversation.owner == Owner.HUMAN.value,
                                                  last < cutoff)
                )
            ).scalars().all()
        done = 0
        for conversation_id in ids:
            after = After(sweep=True)
            async with self._sessions() as session, session.begin():
                conv = await self._steps.lock(session, conversation_id)
                latest = max(filter(None, [conv.last_message_at, conv.owner_changed_at]),
                             default=None)
                if conv.owner != Owner.HUMAN.value or latest is None or latest >= cutoff:
                    continue
                self._steps.move(conv, OwnerEvent.TIMEOUT, reason="idle_timeout")
                ticket = await self._steps.ticket(session, conv)
                self._steps.close_ticket(ticket, "timeout", None)
                self._steps.enqueue(session, conv, say("idle_timeout", ticket.language),
                              author="system")
                conv.assigned_agent_id = None
                await self._steps.fresh_context(session, conv)
                after.forget.add(conv.id)
                after.send.add(conv.id)
                after.conversations.add(conv.id)
            await self._after.run(after)
            done += 1
        return done

    async def sweep(self) -> int:
        """Assign unassigned queued conversations (oldest first) to agents with room."""
        return await self._routing.sweep()

    # ----------------------------------------------------------------- internals

    async def _require_agent(self, session: AsyncSession, agent_id: uuid.UUID) -> None:
        user = await session.get(User, agent_id)
        if user is None or not user.active:
            raise InvalidInput("unknown_agent", "no such active user")

    async def _user_name(self, session: AsyncSession, user_id: uuid.UUID | None) -> str:
        user = await session.get(User, user_id) if user_id else None
        return user.name if user else "another agent"

    def describe_hours(self, language: str) -> str:
        return self._notices.describe_hours(language)

    async def notify(self, conversation_id: uuid.UUID, kind: str = "message") -> None:
        """Tell every inbox that the conversation changed (e.g. the phone's owner wrote)."""
        await self._events.conversation(conversation_id, kind)

def _outcome(conv: Conversation, message_id: uuid.UUID | None = None) -> Outcome:
    return Outcome(conv.id, Owner(conv.owner), conv.assigned_agent_id, message_id)


def _clean_text(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise InvalidInput("empty", "the text must not be empty")
    if len(body) > MAX_TEXT:
        raise InvalidInput("too_long", f"the text has more than {MAX_TEXT} characters")
    return body


__all__ = ["HandoffService", "Outcome", "close_csat_sql", "visible_to_agent"]
