"""What the inbox reads: conversation lists and views, summaries, SLA, teams, canned responses.

Read-only queries (plus small admin writes for teams and canned responses); the
ownership changes live in ``handoff.service``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.access import visible_to_agent
from handoff.auth import Principal
from handoff.config import HandoffConfig
from handoff.conversations import Conversation, Message, display_phone
from handoff.errors import ConversationNotFound, InvalidInput
from handoff.hours import LiveHours
from handoff.listing import ListFilter, page_ids, page_rows
from handoff.ownership import Owner
from handoff.ports import Clock, ConversationSummarizer
from handoff.roles import Role
from handoff.tables import (
    AgentPresence,
    AuthToken,
    CannedResponse,
    Note,
    Team,
    TeamMember,
    Ticket,
    User,
)

SUMMARY_TURNS = 12
SUMMARY_TIMEOUT = 4.0
_ROLES = {"customer": "customer", "bot": "bot", "agent": "agent", "owner_phone": "agent"}


@dataclass(frozen=True, slots=True)
class Sla:
    target_seconds: float
    elapsed_seconds: float  # business time only
    done: bool
    breached: bool
    paused: bool  # outside business hours now


@dataclass(frozen=True, slots=True)
class ConversationItem:
    id: uuid.UUID
    owner: str
    owner_reason: str | None
    escalation_reason: str | None  # of the latest handoff (kept after it is resolved)
    contact_name: str | None
    contact_phone: str | None
    channel: str
    last_intent: str | None
    assigned_agent_id: uuid.UUID | None
    assigned_agent_name: str | None
    team_id: uuid.UUID | None
    team_name: str | None
    ticket_opened_at: datetime | None
    last_message_at: datetime | None
    preview: str | None
    labels: tuple[str, ...]
    first_response: Sla | None
    account: str = ""
    preview_kind: str | None = None  # text | voice | image | document (the preview's message)
    preview_from: str | None = None  # customer | other (the customer has not written yet)
    waiting_since: datetime | None = None  # the customer waits for a person since then
    unread: int = 0  # customer messages since the caller last read it (open handoffs only)


@dataclass(frozen=True, slots=True)
class MessageView:
    id: uuid.UUID
    seq: int
    direction: str
    author: str
    author_name: str | None
    kind: str
    text: str | None
    transcript: str | None
    media: dict[str, Any] | None
    status: str
    created_at: datetime
    author_id: uuid.UUID | None = None  # the staff member who wrote it


@dataclass(frozen=True, slots=True)
class NoteView:
    id: uuid.UUID
    author_name: str
    text: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TicketView:
    id: uuid.UUID
    team_name: str | None
    reason: str | None
    intent: str | None
    opened_at: datetime
    closed_at: datetime | None
    outcome: str | None
    csat_score: int | None
    first_response: Sla
    resolution: Sla


@dataclass(frozen=True, slots=True)
class ConversationView:
    item: ConversationItem
    summary: str
    summary_source: str  # llm | extractive
    messages: tuple[MessageView, ...]
    notes: tuple[NoteView, ...]
    ticket: TicketView | None
    history: tuple[TicketView, ...]
    context_started_at: datetime | None


@dataclass(frozen=True, slots=True)
class TeamView:
    id: uuid.UUID
    name: str
    skills: tuple[str, ...]
    members: tuple[uuid.UUID, ...]


@dataclass(frozen=True, slots=True)
class AgentView:
    id: uuid.UUID
    name: str
    email: str
    role: str
    online: bool
    capacity: int
    load: int
    active: bool


@dataclass(frozen=True, slots=True)
class CannedView:
    id: uuid.UUID
    shortcut: str
    text: str
    language: str


class InboxQueries:
    """Reads for the inbox, filtered by what the caller's role may see."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        config: HandoffConfig,
        clock: Clock,
        summarizer: ConversationSummarizer | None = None,
        hours: LiveHours | None = None,
    ) -> None:
        self._sessions = sessions
        self._config = config
        self._hours = hours or LiveHours(config.hours, config.timezone, config.holidays)
        self._clock = clock
        self._summarizer = summarizer

    async def conversations(
        self,
        actor: Principal,
        *,
        owner: Owner | None = None,
        mine: bool = False,
        limit: int = 200,
        filters: ListFilter | None = None,
    ) -> list[ConversationItem]:
        """One page of the list (see ``conversation_page`` for the cursor)."""
        return (await self.conversation_page(
            actor, filters or ListFilter(owner=owner, mine=mine, limit=limit)
        ))[0]

    async def conversation_page(
        self, actor: Principal, filters: ListFilter
    ) -> tuple[list[ConversationItem], str | None]:
        """Conversations ``actor`` may see, newest activity first, and the next page's cursor."""
        async with self._sessions() as session:
            page = await page_ids(session, actor, filters)
            return await self._items(session, actor, page.ids), page.next_cursor

    async def view(
        self, actor: Principal, conversation_id: uuid.UUID, *, language: str = "es"
    ) -> ConversationView:
        async with self._sessions() as session:
            query = select(Conversation.id).where(Conversation.id == conversation_id,
                                                  Conversation.erased_at.is_(None))
            if actor.role is Role.AGENT:
                query = query.where(visible_to_agent(actor.id))
            if (await session.execute(query)).scalar_one_or_none() is None:
                # invisible and missing look the same: no probing of other teams' ids
                raise ConversationNotFound()
            item = await self._item(session, conversation_id, actor)
            conv = await session.get(Conversation, conversation_id)
            assert conv is not None
            names = {u.id: u.name for u in (await session.execute(select(User))).scalars()}
            rows = (
                await session.execute(
                    select(Message).where(Message.conversation_id == conversation_id)
                    .order_by(Message.seq.desc()).limit(300)
                )
            ).scalars().all()
            messages = tuple(
                MessageView(
                    m.id, m.seq, m.direction, m.author,
                    names.get(m.author_id) if m.author_id else None, m.kind, m.text,
                    m.transcript, m.media, m.status, m.created_at, m.author_id,
                )
                for m in reversed(rows)
            )
            notes = tuple(
                NoteView(n.id, names.get(n.author_id, "?"), n.text, n.created_at)
                for n in (
                    await session.execute(
                        select(Note).where(Note.conversation_id == conversation_id)
                        .order_by(Note.created_at)
                    )
                ).scalars()
            )
            tickets = await self._tickets(session, conv.contact_id)
        current = next((t for t in tickets if t[0].conversation_id == conversation_id
                        and t[0].closed_at is None), None)
        summary, source = await self._summary(messages, conv.context_started_at, item, language)
        return ConversationView(
            item=item, summary=summary, summary_source=source, messages=messages, notes=notes,
            ticket=self._ticket_view(*current) if current else None,
            history=tuple(self._ticket_view(*t) for t in tickets if t is not current),
            context_started_at=conv.context_started_at,
        )

    async def _item(
        self, session: AsyncSession, conversation_id: uuid.UUID, actor: Principal | None = None
    ) -> ConversationItem:
        return (await self._items(session, actor, [conversation_id]))[0]

    async def _items(
        self, session: AsyncSession, actor: Principal | None, ids: Sequence[uuid.UUID]
    ) -> list[ConversationItem]:
        return [self._row_item(r) for r in await page_rows(session, actor, ids)]

    def _row_item(self, r: Any) -> ConversationItem:
        open_ticket = r.ticket_id is not None and r.closed_at is None
        customer = r.customer_at is not None
        preview = (r.customer_text if customer else r.last_text) or ""
        waiting = None
        if open_ticket and r.owner == Owner.QUEUED.value:
            waiting = r.opened_at
        elif open_ticket and r.owner == Owner.HUMAN.value and r.last_direction == "in":
            waiting = r.customer_at
        return ConversationItem(
            id=r.id, owner=r.owner, owner_reason=r.owner_reason,
            escalation_reason=r.reason if r.ticket_id else None,
            contact_name=r.contact_name, contact_phone=_shown(r.phone_e164), channel=r.channel,
            last_intent=r.last_intent, assigned_agent_id=r.assigned_agent_id,
            assigned_agent_name=r.agent_name if r.assigned_agent_id else None,
            team_id=r.team_id if open_ticket else None,
            team_name=r.team_name if open_ticket else None,
            ticket_opened_at=r.opened_at if open_ticket else None,
            last_message_at=r.last_message_at, preview=preview[:160] or None,
            labels=tuple(r.labels),
            first_response=self._sla(
                r.opened_at, r.first_response_at, self._config.first_response_sla_minutes,
            ) if open_ticket else None,
            account=r.account, preview_kind=r.customer_kind if customer else None,
            preview_from="customer" if customer else ("other" if r.last_text else None),
            waiting_since=waiting, unread=int(r.unread),
        )

    async def _tickets(
        self, session: AsyncSession, contact_id: uuid.UUID
    ) -> list[tuple[Ticket, str | None]]:
        rows = (
            await session.execute(
                select(Ticket, Team.name)
                .join(Conversation, Conversation.id == Ticket.conversation_id)
                .outerjoin(Team, Team.id == Ticket.team_id)
                .where(Conversation.contact_id == contact_id)
                .order_by(Ticket.opened_at.desc()).limit(50)
            )
        ).all()
        return [(r[0], r[1]) for r in rows]

    def _ticket_view(self, ticket: Ticket, team_name: str | None) -> TicketView:
        return TicketView(
            id=ticket.id, team_name=team_name, reason=ticket.reason, intent=ticket.intent,
            opened_at=ticket.opened_at, closed_at=ticket.closed_at, outcome=ticket.outcome,
            csat_score=ticket.csat_score,
            first_response=self._sla(ticket.opened_at, ticket.first_response_at,
                                     self._config.first_response_sla_minutes),
            resolution=self._sla(ticket.opened_at, ticket.closed_at,
                                 self._config.resolution_sla_minutes),
        )

    def _sla(self, start: datetime, done_at: datetime | None, minutes: float) -> Sla:
        now = self._clock()
        end = done_at or now
        elapsed = self._hours.business_seconds(start, end)
        target = minutes * 60
        return Sla(
            target_seconds=target, elapsed_seconds=elapsed, done=done_at is not None,
            breached=elapsed > target, paused=done_at is None and not self._hours.is_open(now),
        )

    async def _summary(
        self,
        messages: Sequence[MessageView],
        context_started_at: datetime | None,
        item: ConversationItem,
        language: str = "es",
    ) -> tuple[str, str]:
        turns = [
            (_ROLES[m.author], (m.text or m.transcript or "").strip())
            for m in messages
            if m.author in _ROLES and (m.text or m.transcript)
        ][-SUMMARY_TURNS:]
        if self._summarizer is not None and turns:
            try:
                llm = await asyncio.wait_for(
                    self._summarizer.summarize(turns, language=language), SUMMARY_TIMEOUT
                )
            except TimeoutError:
                llm = None
            if llm:
                return llm.strip(), "llm"
        reason = item.escalation_reason or item.owner_reason
        return extractive_summary(turns, item.last_intent, reason, language), "extractive"

    # ------------------------------------------------------------------ teams and agents

    async def teams(self) -> list[TeamView]:
        async with self._sessions() as session:
            teams = (await session.execute(select(Team).order_by(Team.name))).scalars().all()
            members = (await session.execute(select(TeamMember))).scalars().all()
        return [
            TeamView(t.id, t.name, tuple(t.skills or ()),
                     tuple(m.user_id for m in members if m.team_id == t.id))
            for t in teams
        ]

    async def create_team(self, name: str, skills: Sequence[str]) -> TeamView:
        name = name.strip()
        if not name:
            raise InvalidInput("empty", "a team needs a name")
        team = Team(id=uuid.uuid4(), name=name,
                    skills=sorted({s.strip().lower() for s in skills if s.strip()}))
        try:
            async with self._sessions() as session, session.begin():
                session.add(team)
        except IntegrityError as exc:
            raise InvalidInput("team_exists", f"a team named {name!r} already exists") from exc
        return TeamView(team.id, team.name, tuple(team.skills), ())

    async def set_members(self, team_id: uuid.UUID, user_ids: Sequence[uuid.UUID]) -> None:
        async with self._sessions() as session, session.begin():
            if await session.get(Team, team_id) is None:
                raise InvalidInput("unknown_team", "no such team")
            found = set(
                (await session.execute(select(User.id).where(User.id.in_(list(user_ids)))))
                .scalars()
            )
            if missing := set(user_ids) - found:
                raise InvalidInput("unknown_user", f"no such users: {sorted(map(str, missing))}")
            await session.execute(delete(TeamMember).where(TeamMember.team_id == team_id))
            session.add_all(TeamMember(team_id=team_id, user_id=u) for u in found)

    async def agents(self, *, include_inactive: bool = False) -> list[AgentView]:
        load = (
            select(func.count()).select_from(Conversation)
            .where(Conversation.assigned_agent_id == User.id,
                   Conversation.owner.in_([Owner.QUEUED.value, Owner.HUMAN.value]))
            .scalar_subquery()
        )
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(User, AgentPresence, load.label("load"))
                    .outerjoin(AgentPresence, AgentPresence.user_id == User.id)
                    .where(User.active | include_inactive).order_by(User.name)
                )
            ).all()
        return [
            AgentView(u.id, u.name, u.email, u.role, bool(p and p.online),
                      p.capacity if p else self._config.default_capacity, int(n), u.active)
            for u, p, n in rows
        ]

    async def update_user(
        self, user_id: uuid.UUID, *, active: bool | None = None, role: Role | None = None
    ) -> AgentView:
        """Admins: deactivate (their logins stop working at once) or change a role.
        A deactivated agent's open conversations go back to the queue, unassigned."""
        async with self._sessions() as session, session.begin():
            user = await session.get(User, user_id, with_for_update=True)
            if user is None:
                raise InvalidInput("unknown_user", "no such user")
            if active is not None:
                user.active = active
            if role is not None:
                user.role = role.value
            if active is False:
                # every session ends with the account and stays dead if it is reactivated
                now = self._clock()
                user.sessions_ended_at = now
                await session.execute(
                    update(AuthToken).where(AuthToken.user_id == user_id,
                                            AuthToken.revoked_at.is_(None))
                    .values(revoked_at=now)
                )
                await session.execute(
                    update(AgentPresence).where(AgentPresence.user_id == user_id)
                    .values(online=False)
                )
                await session.execute(
                    update(Conversation)
                    .where(Conversation.assigned_agent_id == user_id,
                           Conversation.owner == Owner.QUEUED.value)
                    .values(assigned_agent_id=None)
                )
        return next(a for a in await self.agents(include_inactive=True) if a.id == user_id)

    # ------------------------------------------------------------------ canned responses

    async def canned(self) -> list[CannedView]:
        async with self._sessions() as session:
            rows = (
                await session.execute(select(CannedResponse).order_by(CannedResponse.shortcut))
            ).scalars().all()
        return [CannedView(r.id, r.shortcut, r.text, r.language) for r in rows]

    async def add_canned(self, shortcut: str, body: str, language: str) -> CannedView:
        shortcut, body = shortcut.strip().lower(), body.strip()
        if not shortcut or not body:
            raise InvalidInput("empty", "shortcut and text are required")
        row = CannedResponse(id=uuid.uuid4(), shortcut=shortcut, text=body, language=language)
        try:
            async with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError as exc:
            raise InvalidInput("exists", f"shortcut {shortcut!r} already exists") from exc
        return CannedView(row.id, row.shortcut, row.text, row.language)

    async def delete_canned(self, canned_id: uuid.UUID) -> bool:
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(CannedResponse).where(CannedResponse.id == canned_id)
                .returning(CannedResponse.id)
            )
            return result.first() is not None


_SUMMARY_WORDS = {
    "es": ("Cliente", "Intención", "Motivo"),
    "en": ("Customer", "Intent", "Reason"),
}


def extractive_summary(
    turns: Sequence[tuple[str, str]], intent: str | None, reason: str | None,
    language: str = "es",
) -> str:
    """A deterministic summary, in the reader's language: what the customer said last and
    the bot's last answer."""
    customer_word, intent_word, reason_word = _SUMMARY_WORDS.get(language, _SUMMARY_WORDS["es"])
    customer = [text for role, text in turns if role == "customer"][-3:]
    bot = [text for role, text in turns if role == "bot"][-1:]
    lines = [f"{customer_word}: «{_clip(t)}»" for t in customer]
    if bot:
        lines.append(f"Bot: «{_clip(bot[0])}»")
    if intent:
        lines.append(f"{intent_word}: {intent}")
    if reason:
        lines.append(f"{reason_word}: {reason}")
    return "\n".join(lines) if lines else "—"


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(key: str | None) -> str | None:
    return display_phone(key) if key else None


__all__ = ["InboxQueries", "extractive_summary"]
