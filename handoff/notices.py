"""What the customer is told while a person is on the way: the expected wait, or the
out-of-office reply with the business hours and the next opening."""

from __future__ import annotations

import math
import uuid
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.config import HandoffConfig
from handoff.conversations import Conversation
from handoff.hours import LiveHours
from handoff.ownership import Owner
from handoff.roles import Role
from handoff.tables import AgentPresence, Team, TeamMember, Ticket, User
from handoff.texts import DAY_NAMES, MINUTES, NEXT_OPEN
from handoff.texts import text as say


class CustomerNotices:
    """The texts a waiting customer gets, in their language."""

    def __init__(self, *, config: HandoffConfig, hours: LiveHours) -> None:
        self._config = config
        self._hours = hours

    async def queued(
        self, session: AsyncSession, ticket: Ticket, agent: uuid.UUID | None, language: str
    ) -> str:
        """The team and the expected wait (no wait when nobody of the team is online)."""
        team_name = (
            await session.execute(select(Team.name).where(Team.id == ticket.team_id))
        ).scalar_one_or_none()
        team = f" ({team_name})" if team_name else ""
        online = select(func.count()).select_from(AgentPresence).join(
            User, User.id == AgentPresence.user_id
        ).where(AgentPresence.online, User.active, User.role == Role.AGENT.value)
        if ticket.team_id is not None:
            online = online.join(TeamMember, and_(TeamMember.user_id == User.id,
                                                  TeamMember.team_id == ticket.team_id))
        agents = int((await session.execute(online)).scalar_one())
        if agents == 0:
            return say("queued_nobody", language, team=team)
        ahead = 0
        if agent is None:
            ahead = await self._ahead(session, ticket)
        minutes = max(2, math.ceil(self._config.avg_handle_minutes * (ahead + 1) / agents))
        wait = MINUTES.get(language, MINUTES["es"]).format(n=minutes)
        return say("queued", language, team=team, wait=wait)

    async def _ahead(self, session: AsyncSession, ticket: Ticket) -> int:
        """Open handoffs of the same team (or of no team) waiting in the queue."""
        return int(
            (
                await session.execute(
                    select(func.count()).select_from(Ticket).join(
                        Conversation, Conversation.id == Ticket.conversation_id
                    ).where(
                        Ticket.closed_at.is_(None), Ticket.id != ticket.id,
                        Conversation.owner == Owner.QUEUED.value,
                        Ticket.team_id.is_(None) if ticket.team_id is None
                        else Ticket.team_id == ticket.team_id,
                    )
                )
            ).scalar_one()
        )

    def out_of_office(self, language: str, now: datetime) -> str:
        opening = self._hours.next_open(now)
        lang = language if language in DAY_NAMES else "es"
        if opening is None:
            when = "—"
        else:
            local = opening.astimezone(self._hours.zone)
            when = NEXT_OPEN[lang].format(
                when=f"{DAY_NAMES[lang][local.weekday()]} {local:%H:%M}"
            )
        return say("out_of_office", language, hours=self.describe_hours(lang), next_open=when)

    def describe_hours(self, language: str) -> str:
        spec = self._hours.spec
        if language == "es":
            for en, es in (("mon", "lun"), ("tue", "mar"), ("wed", "mié"), ("thu", "jue"),
                           ("fri", "vie"), ("sat", "sáb"), ("sun", "dom")):
                spec = spec.replace(en, es)
        return spec.replace(";", ",") + f" ({self._hours.timezone})"
