"""The one authorization policy for conversations: who may read, start, claim, reply,
transfer, release, assign, resolve, annotate and see the history of a conversation.

Every route, the inbox stream, the media links and the pages ask here (``authorize`` for
one conversation, ``visible_to_agent`` as a SQL condition for lists), so a new way in
cannot quietly skip a check. Supervisors and admins may act on every conversation; an
agent only on what ``visible_to_agent`` lets them see, and some actions only on what
they hold.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from handoff.auth import Principal
from handoff.conversations import Conversation
from handoff.errors import NotAllowed
from handoff.ownership import Owner
from handoff.roles import Role
from handoff.tables import TeamMember, Ticket


class Action(StrEnum):
    """What someone does with a conversation."""

    READ = "read"            # transcript, summary, contact, follow-ups
    HISTORY = "history"      # past tickets and messages before a takeover
    START = "start"          # write first to a number (its conversation may exist)
    CLAIM = "claim"
    REPLY = "reply"          # includes attachments and voice notes
    RELEASE = "release"
    TRANSFER = "transfer"
    ASSIGN = "assign"        # give to an agent (supervisors)
    RESOLVE = "resolve"
    ANNOTATE = "annotate"    # notes, labels, contact details, read marks, follow-ups


# actions only the agent who holds the conversation may do (when an agent does them)
_HOLDER_ONLY = frozenset({Action.RELEASE, Action.TRANSFER})
_SUPERVISORS_ONLY = frozenset({Action.ASSIGN})


def visible_to_agent(agent_id: uuid.UUID) -> Any:
    """SQL condition: the conversation is assigned to the agent, or its *open* handoff is
    routed to one of the agent's teams or to no team (so nothing goes unseen), or the
    agent claimed or closed one of its handoffs (its own history). A closed handoff of
    another team does not keep the conversation visible, and one only the bot handled is
    never visible."""
    my_teams = select(TeamMember.team_id).where(TeamMember.user_id == agent_id)
    # an alias, correlated to Conversation only: the enclosing query may itself select
    # tickets
    ticket = aliased(Ticket)
    return or_(
        Conversation.assigned_agent_id == agent_id,
        select(ticket.id).where(
            ticket.conversation_id == Conversation.id,
            or_(
                ticket.closed_at.is_(None)
                & or_(ticket.team_id.is_(None), ticket.team_id.in_(my_teams)),
                ticket.claimed_by == agent_id,
                ticket.closed_by == agent_id,
            ),
        ).correlate(Conversation).exists(),
    )


async def can_see(session: AsyncSession, actor: Principal, conversation_id: uuid.UUID) -> bool:
    """Whether ``actor`` may see the conversation at all (False when it does not exist)."""
    query = select(func.count()).select_from(Conversation).where(
        Conversation.id == conversation_id
    )
    if actor.role is Role.AGENT:
        query = query.where(visible_to_agent(actor.id))
    return bool((await session.execute(query)).scalar_one())


async def authorize(
    session: AsyncSession, actor: Principal, action: Action, conv: Conversation
) -> None:
    """NotAllowed unless ``actor`` may do ``action`` on ``conv`` (the one policy)."""
    if action in _SUPERVISORS_ONLY and actor.role is Role.AGENT:
        raise NotAllowed("supervisors_only", "only supervisors and admins do this")
    if actor.role is not Role.AGENT:
        return
    if conv.assigned_agent_id != actor.id and not await can_see(session, actor, conv.id):
        raise NotAllowed("not_your_team", "this conversation belongs to another team")
    if action in _HOLDER_ONLY or (action is Action.RESOLVE and conv.owner == Owner.HUMAN.value):
        require_holder(actor, conv)


async def require_visible(session: AsyncSession, actor: Principal, conv: Conversation) -> None:
    """NotAllowed when ``actor`` is an agent who may not see ``conv`` (``Action.READ``)."""
    await authorize(session, actor, Action.READ, conv)


def require_holder(actor: Principal, conv: Conversation) -> None:
    """NotAllowed when ``actor`` is an agent who does not have ``conv``."""
    if actor.role is Role.AGENT and conv.assigned_agent_id != actor.id:
        raise NotAllowed("not_yours", "only the agent who has the conversation can do this")


__all__ = ["Action", "authorize", "can_see", "require_holder", "require_visible",
           "visible_to_agent"]
