"""What agents do from the inbox (and the API): claim, reply, start, release, transfer,
reassign, resolve, notes, labels and presence.

Each action is one transaction that locks the conversation first (``Steps.lock``), so
two agents acting at the same instant are serialized and the second sees the first's
result; what must happen after the commit is collected in an ``After``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.access import Action, authorize
from handoff.auth import Principal
from handoff.config import HandoffConfig
from handoff.conversations import Contact, Conversation, contact_key
from handoff.errors import Conflict, InvalidInput, NotAllowed
from handoff.ownership import Owner, OwnerEvent
from handoff.ports import Clock
from handoff.roles import Role
from handoff.routing import Routing
from handoff.steps import After, AfterCommit, InboxEvents, Steps
from handoff.tables import AgentPresence, Label, Note, Team, User
from handoff.texts import text as say

MAX_TEXT = 4096
_MEDIA_KINDS = frozenset({"voice", "image", "document"})
MAX_LABEL = 40


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an action did: the conversation's owner and agent afterwards."""

    conversation_id: uuid.UUID
    owner: Owner
    assigned_agent_id: uuid.UUID | None
    message_id: uuid.UUID | None = None


class AgentActions:
    """The agents' actions on a conversation, each in its own transaction."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        config: HandoffConfig,
        clock: Clock,
        steps: Steps,
        routing: Routing,
        after: AfterCommit,
        events: InboxEvents,
    ) -> None:
        self._sessions = sessions
        self._config = config
        self._clock = clock
        self._steps = steps
        self._routing = routing
        self._after = after
        self._events = events

    async def claim(self, actor: Principal, conversation_id: uuid.UUID) -> Outcome:
        """Take a queued conversation; a second agent at the same instant gets Conflict."""
        after = After()
        async with self._sessions() as session, session.begin():
            conv = await self._steps.lock(session, conversation_id)
            await authorize(session, actor, Action.CLAIM, conv)
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
            ticket.claimed_by = actor.id
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
            actor, conversation_id, body, action=Action.REPLY, kind=kind, media=media
        )

    async def _reply(
        self,
        actor: Principal,
        conversation_id: uuid.UUID,
        body: str | None,
        *,
        action: Action | None,
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
            if action is not None:  # None: the conversation this call just created
                await authorize(session, actor, action, conv)
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
            ticket.claimed_by = ticket.claimed_by or actor.id
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
        phone = contact_key(channel, phone)
        async with self._sessions() as session, session.begin():
            # key-share lock: if this customer is being erased right now, wait and then
            # find no contact (a new one is made), never write into the erased one
            contact_id = (
                await session.execute(
                    select(Contact.id).where(Contact.phone_e164 == phone)
                    .with_for_update(key_share=True)
                )
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
            action: Action | None = Action.START
            if conv_id is None:
                action = None
                conv_id = uuid.uuid4()
                session.add(
                    Conversation(
                        id=conv_id, contact_id=contact_id, channel=channel, account=account,
                        owner=Owner.BOT.value, context_started_at=self._clock(),
                    )
                )
                await session.flush()
        # an existing conversation follows the same rules as claiming it: an agent cannot
        # reach another team's (or a bot-only) conversation by typing its number
        return await self._reply(actor, conv_id, body, action=action)

    async def release(self, actor: Principal, conversation_id: uuid.UUID) -> Outcome:
        """Give a claimed conversation back to the queue (someone else may take it)."""
        after = After(sweep=True)
        async with self._sessions() as session, session.begin():
            conv = await self._steps.lock(session, conversation_id)
            await authorize(session, actor, Action.RELEASE, conv)
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
            await authorize(session, actor, Action.TRANSFER, conv)
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
        if actor.role is Role.AGENT:  # Action.ASSIGN: checked before any lock
            raise NotAllowed("supervisors_only", "only supervisors and admins reassign")
        return await self.transfer(actor, conversation_id, agent_id=agent_id)

    async def resolve(self, actor: Principal, conversation_id: uuid.UUID) -> Outcome:
        """Done: back to the bot with a fresh context, the ticket closed, CSAT asked."""
        after = After(sweep=True)
        async with self._sessions() as session, session.begin():
            conv = await self._steps.lock(session, conversation_id)
            await authorize(session, actor, Action.RESOLVE, conv)
            self._steps.move(conv, OwnerEvent.RESOLVE, reason="resolved")
            ticket = await self._steps.ticket(session, conv)
            self._steps.close_ticket(ticket, "resolved", actor.id)
            conv.assigned_agent_id = None
            if self._config.csat:
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
        """A private note for the team (the customer never sees it)."""
        body = _clean_text(body)
        async with self._sessions() as session, session.begin():
            # locked: a note never lands in a conversation being erased right now
            conv = await self._steps.lock(session, conversation_id)
            await authorize(session, actor, Action.ANNOTATE, conv)
            note = Note(id=uuid.uuid4(), conversation_id=conv.id, author_id=actor.id, text=body)
            session.add(note)
        await self._events.conversation(conversation_id, "note")
        return note.id

    async def set_labels(
        self, actor: Principal, conversation_id: uuid.UUID, labels: Sequence[str]
    ) -> list[str]:
        """Replace the conversation's labels (trimmed, lower case); returns them sorted."""
        clean = sorted({label.strip().lower() for label in labels if label.strip()})
        if any(len(label) > MAX_LABEL for label in clean):
            raise InvalidInput("label_too_long", f"labels have at most {MAX_LABEL} characters")
        async with self._sessions() as session, session.begin():
            conv = await self._steps.lock(session, conversation_id)
            await authorize(session, actor, Action.ANNOTATE, conv)
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
                    user_id=actor.id, capacity=self._config.default_capacity, online=False
                )
                session.add(presence)
            presence.online = online
            presence.changed_at = self._clock()
            if capacity is not None:
                presence.capacity = capacity
        if online:
            await self._routing.sweep()
        await self._events.agent(actor.id, online=online)

    async def _require_agent(self, session: AsyncSession, agent_id: uuid.UUID) -> None:
        user = await session.get(User, agent_id)
        if user is None or not user.active:
            raise InvalidInput("unknown_agent", "no such active user")

    async def _user_name(self, session: AsyncSession, user_id: uuid.UUID | None) -> str:
        user = await session.get(User, user_id) if user_id else None
        return user.name if user else "another agent"


def _outcome(conv: Conversation, message_id: uuid.UUID | None = None) -> Outcome:
    return Outcome(conv.id, Owner(conv.owner), conv.assigned_agent_id, message_id)


def _clean_text(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise InvalidInput("empty", "the text must not be empty")
    if len(body) > MAX_TEXT:
        raise InvalidInput("too_long", f"the text has more than {MAX_TEXT} characters")
    return body
