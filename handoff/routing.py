"""Who gets a queued conversation: the team (by skills), then an online agent with room.

Assignments are serialized by one advisory lock, so two of them never hand the same
agent's last free slot to two conversations.
"""

from __future__ import annotations

import uuid

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.config import HandoffConfig
from handoff.conversations import Conversation
from handoff.ownership import Owner
from handoff.ports import Clock
from handoff.roles import Role
from handoff.steps import InboxEvents
from handoff.tables import AgentPresence, Team, TeamMember, Ticket, User

_ASSIGN_LOCK = 0x61746E64  # pg advisory lock key: assignments are serialized


class Routing:
    """Routes a handoff to a team and assigns queued conversations to agents."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        config: HandoffConfig,
        clock: Clock,
        events: InboxEvents,
    ) -> None:
        self._sessions = sessions
        self._config = config
        self._clock = clock
        self._events = events

    async def team_for(
        self, session: AsyncSession, reason: str | None, intent: str | None, hint: str
    ) -> uuid.UUID | None:
        """The team whose skills match the escalation reason, intent and the customer's words."""
        wanted: list[str] = []
        for key in (reason, intent):
            if key and key in self._config.reason_skills:
                wanted.append(self._config.reason_skills[key])
        folded = f"{reason or ''} {intent or ''} {hint}".lower()
        for skill, words in self._config.skills.items():
            if any(word in folded for word in words) and skill not in wanted:
                wanted.insert(0, skill)
        wanted.append("general")
        teams = (await session.execute(select(Team.id, Team.skills).order_by(Team.name))).all()
        for skill in wanted:
            for team_id, skills in teams:
                if skill in (skills or []):
                    found: uuid.UUID = team_id
                    return found
        return None

    async def assign(
        self, session: AsyncSession, conv: Conversation, ticket: Ticket, *, locked: bool = False
    ) -> uuid.UUID | None:
        """Pick an online agent with room (least busy or round robin) for a queued conversation."""
        if not locked:
            await session.execute(select(func.pg_advisory_xact_lock(_ASSIGN_LOCK)))
        load = (
            select(func.count())
            .select_from(Conversation)
            .where(Conversation.assigned_agent_id == User.id,
                   Conversation.owner.in_([Owner.QUEUED.value, Owner.HUMAN.value]))
            .scalar_subquery()
        )
        query = (
            select(User.id, load.label("load"))
            .join(AgentPresence, AgentPresence.user_id == User.id)
            .where(User.active, User.role == Role.AGENT.value, AgentPresence.online,
                   load < AgentPresence.capacity)
        )
        if ticket.team_id is not None:
            query = query.join(TeamMember, and_(TeamMember.user_id == User.id,
                                                TeamMember.team_id == ticket.team_id))
        fairness = AgentPresence.last_assigned_at.asc().nulls_first()
        if self._config.assignment == "least_busy":
            query = query.order_by(load.asc(), fairness, User.email)
        else:
            query = query.order_by(fairness, User.email)
        row = (await session.execute(query.limit(1))).first()
        if row is None:
            return None
        now = self._clock()
        agent_id: uuid.UUID = row.id
        conv.assigned_agent_id = agent_id
        ticket.assigned_at = now
        await session.execute(
            update(AgentPresence).where(AgentPresence.user_id == agent_id)
            .values(last_assigned_at=func.clock_timestamp())
        )
        return agent_id

    async def sweep(self) -> int:
        """Assign unassigned queued conversations (oldest first) to agents with room."""
        assigned = 0
        touched: set[uuid.UUID] = set()
        async with self._sessions() as session, session.begin():
            await session.execute(select(func.pg_advisory_xact_lock(_ASSIGN_LOCK)))
            rows = (
                await session.execute(
                    select(Conversation, Ticket)
                    .join(Ticket, and_(Ticket.conversation_id == Conversation.id,
                                       Ticket.closed_at.is_(None)))
                    .where(Conversation.owner == Owner.QUEUED.value,
                           Conversation.assigned_agent_id.is_(None))
                    .order_by(Ticket.opened_at)
                    .limit(500)
                    .with_for_update(of=Conversation, skip_locked=True)
                )
            ).all()
            for conv, ticket in rows:
                if await self.assign(session, conv, ticket, locked=True) is not None:
                    assigned += 1
                    touched.add(conv.id)
        # after the commit: the inboxes see the new owners
        for conversation_id in touched:
            await self._events.conversation(conversation_id, "owner")
        return assigned
