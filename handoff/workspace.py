"""The agent's workspace around the conversation list: read markers and unread counts, the
contact panel (name, e-mail, notes, past conversations), label colours and suggestions, and
the supervisor's live dashboard (queue, longest wait, agents online, SLA at risk)."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.access import require_visible
from handoff.auth import Principal
from handoff.config import HandoffConfig
from handoff.conversations import Contact, Conversation, Message, display_phone
from handoff.errors import ConversationNotFound, InvalidInput
from handoff.hours import LiveHours
from handoff.listing import UNREAD_SQL, ListFilter, Status, conditions
from handoff.ownership import Owner
from handoff.ports import Clock, EventPublisher
from handoff.steps import InboxEvents
from handoff.tables import AgentPresence, Label, LabelColor, Team, Ticket, User

PALETTE = ("#1f6feb", "#8250df", "#bf3989", "#cf222e", "#bc4c00", "#9a6700", "#1a7f37",
           "#0969da", "#6639ba", "#57606a")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class Keep:
    """A contact field left as it is (not given in a partial update)."""


KEEP = Keep()
SLA_AT_RISK = 0.75  # share of the first-response target used up


@dataclass(frozen=True, slots=True)
class InboxCounts:
    queued: int
    mine: int
    open: int
    unread: int  # customer messages the caller has not read, over the queue and their own


@dataclass(frozen=True, slots=True)
class PastConversation:
    conversation_id: uuid.UUID
    channel: str
    account: str
    owner: str
    last_message_at: datetime | None
    handoffs: int


@dataclass(frozen=True, slots=True)
class ContactView:
    id: uuid.UUID
    name: str | None
    phone: str | None
    email: str | None
    notes: str | None
    opted_out: bool
    conversations: tuple[PastConversation, ...]


@dataclass(frozen=True, slots=True)
class LabelInfo:
    name: str
    color: str
    count: int


@dataclass(frozen=True, slots=True)
class AtRisk:
    conversation_id: uuid.UUID
    contact: str
    owner: str
    agent_name: str | None
    elapsed_seconds: float
    target_seconds: float
    breached: bool


@dataclass(frozen=True, slots=True)
class AgentLoad:
    id: uuid.UUID
    name: str
    role: str
    online: bool
    load: int
    capacity: int


@dataclass(frozen=True, slots=True)
class Dashboard:
    queue_size: int
    longest_wait_seconds: float | None
    longest_wait_conversation: uuid.UUID | None
    agents_online: int
    with_agents: int
    sla_at_risk: tuple[AtRisk, ...]
    agents: tuple[AgentLoad, ...]


def default_color(label: str) -> str:
    """A stable colour for a label nobody has coloured yet."""
    return PALETTE[hashlib.sha256(label.encode()).digest()[0] % len(PALETTE)]


class Workspace:
    """Reads and small writes around the list; ownership changes stay in ``HandoffService``."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, config: HandoffConfig,
        clock: Clock, hours: LiveHours, publisher: EventPublisher,
    ) -> None:
        self._sessions = sessions
        self._config = config
        self._clock = clock
        self._hours = hours
        self._events = InboxEvents(publisher)

    async def _visible(
        self, session: AsyncSession, actor: Principal, conversation_id: uuid.UUID
    ) -> Conversation:
        conv = await session.get(Conversation, conversation_id)
        if conv is None:
            raise ConversationNotFound()
        await require_visible(session, actor, conv)
        return conv

    async def mark_read(self, actor: Principal, conversation_id: uuid.UUID) -> int:
        """Everything in the conversation is read by ``actor``; returns the last seq."""
        async with self._sessions() as session, session.begin():
            await self._visible(session, actor, conversation_id)
            last = (await session.execute(
                select(func.coalesce(func.max(Message.seq), 0))
                .where(Message.conversation_id == conversation_id)
            )).scalar_one()
            await session.execute(text("""
                INSERT INTO conversation_reads (user_id, conversation_id, last_read_seq, read_at)
                VALUES (:user, :conv, :seq, now())
                ON CONFLICT (user_id, conversation_id) DO UPDATE
                SET last_read_seq = GREATEST(conversation_reads.last_read_seq, :seq),
                    read_at = now()
            """), {"user": actor.id, "conv": conversation_id, "seq": int(last)})
        return int(last)

    async def counts(self, actor: Principal) -> InboxCounts:
        """Tab counts and the unread total shown in the browser tab's title."""
        async with self._sessions() as session:
            found: dict[Status, int] = {}
            for status in (Status.QUEUED, Status.MINE, Status.OPEN):
                where = conditions(actor, ListFilter(status=status))
                found[status] = (await session.execute(
                    select(func.count()).select_from(Conversation)
                    .join(Contact, Contact.id == Conversation.contact_id).where(*where)
                )).scalar_one()
            mine_or_queued = conditions(actor, ListFilter(status=Status.OPEN))
            if actor.role.value == "agent":
                mine_or_queued.append(
                    (Conversation.owner == Owner.QUEUED.value)
                    | (Conversation.assigned_agent_id == actor.id)
                )
            ids = (await session.execute(
                select(Conversation.id).join(Contact, Contact.id == Conversation.contact_id)
                .where(*mine_or_queued)
            )).scalars().all()
            unread = (await session.execute(
                UNREAD_SQL, {"ids": list(ids), "user_id": actor.id}
            )).scalar_one() if ids else 0
        return InboxCounts(found[Status.QUEUED], found[Status.MINE], found[Status.OPEN],
                           int(unread))

    # ------------------------------------------------------------------ contact panel

    async def contact(self, actor: Principal, conversation_id: uuid.UUID) -> ContactView:
        async with self._sessions() as session:
            conv = await self._visible(session, actor, conversation_id)
            return await self._contact(session, conv.contact_id)

    async def _contact(self, session: AsyncSession, contact_id: uuid.UUID) -> ContactView:
        contact = await session.get(Contact, contact_id)
        assert contact is not None
        handoffs = (
            select(func.count()).select_from(Ticket)
            .where(Ticket.conversation_id == Conversation.id).scalar_subquery()
        )
        rows = (await session.execute(
            select(Conversation, handoffs).where(Conversation.contact_id == contact_id)
            .order_by(Conversation.last_message_at.desc().nulls_last())
        )).all()
        return ContactView(
            id=contact.id, name=contact.name,
            phone=display_phone(contact.phone_e164) if contact.phone_e164 else None,
            email=contact.email,
            notes=contact.notes, opted_out=contact.opted_out,
            conversations=tuple(
                PastConversation(c.id, c.channel, c.account, c.owner, c.last_message_at, int(n))
                for c, n in rows
            ),
        )

    async def update_contact(
        self, actor: Principal, conversation_id: uuid.UUID, *, name: str | None | Keep = KEEP,
        email: str | None | Keep = KEEP, notes: str | None | Keep = KEEP,
    ) -> ContactView:
        """Edit the customer's name, e-mail and notes: a field not given is kept, an empty
        one clears; InvalidInput on a bad e-mail, nothing saved."""
        if not isinstance(email, Keep):
            email = (email or "").strip() or None
            if email is not None and not _EMAIL.match(email):
                raise InvalidInput("invalid_email", "that is not an e-mail address")
        async with self._sessions() as session, session.begin():
            conv = await self._visible(session, actor, conversation_id)
            contact = await session.get(Contact, conv.contact_id, with_for_update=True)
            assert contact is not None
            if not isinstance(name, Keep):
                contact.name = (name or "").strip()[:200] or None
            if not isinstance(email, Keep):
                contact.email = email
            if not isinstance(notes, Keep):
                contact.notes = (notes or "").strip()[:4000] or None
            view = await self._contact(session, conv.contact_id)
        await self._events.conversation(conversation_id, "contact")
        return view

    # ------------------------------------------------------------------ labels

    async def labels(self) -> list[LabelInfo]:
        """Every label in use or coloured, with its colour and how often it is used."""
        async with self._sessions() as session:
            used = {r[0]: int(r[1]) for r in (await session.execute(
                select(Label.label, func.count()).group_by(Label.label)
            )).all()}
            colors = {r[0]: r[1] for r in (await session.execute(
                select(LabelColor.label, LabelColor.color)
            )).all()}
        names = sorted(set(used) | set(colors))
        return [LabelInfo(n, colors.get(n) or default_color(n), int(used.get(n, 0)))
                for n in names]

    async def set_label_color(self, label: str, color: str) -> LabelInfo:
        label = label.strip().lower()
        if not label or len(label) > 40:
            raise InvalidInput("invalid_label", "a label has 1 to 40 characters")
        if not _COLOR.match(color):
            raise InvalidInput("invalid_color", "a colour looks like #1f6feb")
        async with self._sessions() as session, session.begin():
            await session.execute(
                insert(LabelColor).values(label=label, color=color.lower())
                .on_conflict_do_update(index_elements=["label"], set_={"color": color.lower()})
            )
        return next(i for i in await self.labels() if i.name == label)

    # ------------------------------------------------------------------ teams

    async def update_team(
        self, team_id: uuid.UUID, *, name: str | None, skills: list[str] | None
    ) -> tuple[uuid.UUID, str, tuple[str, ...]]:
        """Rename a team or replace its skills (InvalidInput on an empty or taken name)."""
        try:
            async with self._sessions() as session, session.begin():
                team = await session.get(Team, team_id, with_for_update=True)
                if team is None:
                    raise InvalidInput("unknown_team", "no such team")
                if name is not None:
                    if not name.strip():
                        raise InvalidInput("empty", "a team needs a name")
                    team.name = name.strip()
                if skills is not None:
                    team.skills = sorted({s.strip().lower() for s in skills if s.strip()})
                await session.flush()
                return team.id, team.name, tuple(team.skills)
        except IntegrityError as exc:
            raise InvalidInput("team_exists", f"a team named {name!r} already exists") from exc

    # ------------------------------------------------------------------ live dashboard

    async def dashboard(self) -> Dashboard:
        now = self._clock()
        async with self._sessions() as session:
            rows = (await session.execute(
                select(Conversation.id, Conversation.owner, Contact.name, Contact.phone_e164,
                       User.name, Ticket.opened_at, Ticket.first_response_at)
                .join(Ticket, (Ticket.conversation_id == Conversation.id)
                      & Ticket.closed_at.is_(None))
                .join(Contact, Contact.id == Conversation.contact_id)
                .outerjoin(User, User.id == Conversation.assigned_agent_id)
                .where(Conversation.owner.in_([Owner.QUEUED.value, Owner.HUMAN.value]))
            )).all()
            agents = await self._agent_loads(session)
        target = self._config.first_response_sla_minutes * 60
        queued = [r for r in rows if r[1] == Owner.QUEUED.value]
        oldest = min(queued, key=lambda r: r[5], default=None)
        risk = []
        for cid, owner, name, phone, agent, opened, first in rows:
            if first is not None:
                continue
            elapsed = self._hours.business_seconds(opened, now)
            if elapsed >= target * SLA_AT_RISK:
                shown = name or (display_phone(phone) if phone else "?")
                risk.append(AtRisk(cid, shown, owner, agent, elapsed, target, elapsed > target))
        risk.sort(key=lambda a: -a.elapsed_seconds)
        return Dashboard(
            queue_size=len(queued),
            longest_wait_seconds=(now - oldest[5]).total_seconds() if oldest else None,
            longest_wait_conversation=oldest[0] if oldest else None,
            agents_online=sum(1 for a in agents if a.online),
            with_agents=len(rows) - len(queued), sla_at_risk=tuple(risk), agents=agents,
        )

    async def _agent_loads(self, session: AsyncSession) -> tuple[AgentLoad, ...]:
        load = (
            select(func.count()).select_from(Conversation)
            .where(Conversation.assigned_agent_id == User.id,
                   Conversation.owner.in_([Owner.QUEUED.value, Owner.HUMAN.value]))
            .scalar_subquery()
        )
        rows = (await session.execute(
            select(User, AgentPresence, load).outerjoin(
                AgentPresence, AgentPresence.user_id == User.id
            ).where(User.active).order_by(User.name)
        )).all()
        return tuple(
            AgentLoad(u.id, u.name, u.role, bool(p and p.online), int(n),
                      p.capacity if p else self._config.default_capacity)
            for u, p, n in rows
        )


__all__ = ["ContactView", "Dashboard", "InboxCounts", "LabelInfo", "Workspace", "default_color"]
