"""Who may see and act on a conversation: agents see their teams' and their own; supervisors
and admins see all."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.auth import Principal
from handoff.conversations import Conversation
from handoff.errors import NotAllowed
from handoff.roles import Role
from handoff.tables import TeamMember, Ticket


def visible_to_agent(agent_id: uuid.UUID) -> Any:
    """SQL condition: the conversation is assigned to the agent, or any of its handoffs
    was routed to one of the agent's teams, or to no team (so nothing goes unseen)."""
    my_teams = select(TeamMember.team_id).where(TeamMember.user_id == agent_id)
    return or_(
        Conversation.assigned_agent_id == agent_id,
        select(Ticket.id).where(
            Ticket.conversation_id == Conversation.id,
            or_(Ticket.team_id.is_(None), Ticket.team_id.in_(my_teams)),
        ).exists(),
    )


async def require_visible(session: AsyncSession, actor: Principal, conv: Conversation) -> None:
    """NotAllowed when ``actor`` is an agent who may not see ``conv``."""
    if actor.role is not Role.AGENT or conv.assigned_agent_id == actor.id:
        return
    visible = (
        await session.execute(
            select(func.count()).select_from(Conversation).where(
                Conversation.id == conv.id, visible_to_agent(actor.id)
            )
        )
    ).scalar_one()
    if not visible:
        raise NotAllowed("not_your_team", "this conversation belongs to another team")


def require_holder(actor: Principal, conv: Conversation) -> None:
    """NotAllowed when ``actor`` is an agent who does not have ``conv``."""
    if actor.role is Role.AGENT and conv.assigned_agent_id != actor.id:
        raise NotAllowed("not_yours", "only the agent who has the conversation can do this")
