"""The conversation list of the inbox: filters, search, keyset pages, previews, wait, unread.

One SQL statement per page: the page's ids are chosen first (filters and order use the
``last_message_at`` indexes; search uses the trigram indexes), then each row of the page
gets its latest ticket, the customer's last message, labels and unread count (lateral
joins over ``ix_messages_conversation_seq``). Fast at 10,000 conversations and more.
"""

from __future__ import annotations

import base64
import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, literal, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.access import visible_to_agent
from handoff.auth import Principal
from handoff.conversations import Contact, Conversation, Message
from handoff.errors import InvalidInput
from handoff.ownership import Owner
from handoff.roles import Role
from handoff.tables import Label, Ticket


class Status(enum.StrEnum):
    """The list's status filter: the tabs of the inbox."""

    QUEUED = "queued"
    MINE = "mine"
    OPEN = "open"  # queued or with an agent
    RESOLVED = "resolved"  # handed back to the bot after a handoff
    CLOSED = "closed"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class ListFilter:
    status: Status = Status.ALL
    owner: Owner | None = None  # the older owner= filter, kept for API clients
    mine: bool = False
    query: str | None = None
    label: str | None = None
    agent_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    channel: str | None = None
    account: str | None = None
    cursor: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class Page:
    ids: list[uuid.UUID]
    next_cursor: str | None


def encode_cursor(at: datetime | None, conversation_id: uuid.UUID) -> str:
    raw = f"{at.isoformat() if at else ''}|{conversation_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime | None, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, cid = raw.partition("|")
        return (datetime.fromisoformat(at) if at else None), uuid.UUID(cid)
    except ValueError as exc:
        raise InvalidInput("bad_cursor", "the page cursor is not valid") from exc


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_condition(query: str) -> Any:
    """Name, phone (digits in any format) or any message's text contains ``query``."""
    pattern = _like(query.strip())
    digits = "".join(ch for ch in query if ch.isdigit())
    conditions = [
        Contact.name.ilike(pattern, escape="\\"),
        exists().where(
            Message.conversation_id == Conversation.id,
            Message.text.ilike(pattern, escape="\\"),
        ),
    ]
    if len(digits) >= 3:
        conditions.append(Contact.phone_e164.like(_like(digits), escape="\\"))
    return or_(*conditions)


def _status_condition(status: Status, actor: Principal) -> Any:
    open_owners = [Owner.QUEUED.value, Owner.HUMAN.value]
    match status:
        case Status.QUEUED:
            return Conversation.owner == Owner.QUEUED.value
        case Status.MINE:
            return and_(Conversation.assigned_agent_id == actor.id,
                        Conversation.owner.in_(open_owners))
        case Status.OPEN:
            return Conversation.owner.in_(open_owners)
        case Status.RESOLVED:
            return and_(
                Conversation.owner == Owner.BOT.value,
                exists().where(Ticket.conversation_id == Conversation.id,
                               Ticket.closed_at.is_not(None)),
            )
        case Status.CLOSED:
            return Conversation.owner == Owner.CLOSED.value
    return literal(True)


def conditions(actor: Principal, f: ListFilter) -> list[Any]:
    """The WHERE clauses of a filter, for what ``actor`` may see."""
    # an erased customer's conversation is kept for the figures, never listed
    where: list[Any] = [_status_condition(f.status, actor), Conversation.erased_at.is_(None)]
    if f.owner is not None:
        where.append(Conversation.owner == f.owner.value)
    if f.mine:
        where.append(Conversation.assigned_agent_id == actor.id)
    if actor.role is Role.AGENT:
        where.append(visible_to_agent(actor.id))
    if f.query and f.query.strip():
        where.append(search_condition(f.query))
    if f.label:
        where.append(exists().where(Label.conversation_id == Conversation.id,
                                    Label.label == f.label.strip().lower()))
    if f.agent_id:
        where.append(Conversation.assigned_agent_id == f.agent_id)
    if f.team_id:
        where.append(exists().where(Ticket.conversation_id == Conversation.id,
                                    Ticket.closed_at.is_(None), Ticket.team_id == f.team_id))
    if f.channel:
        where.append(Conversation.channel == f.channel)
    if f.account:
        where.append(Conversation.account == f.account)
    return where


async def page_ids(session: AsyncSession, actor: Principal, f: ListFilter) -> Page:
    """The ids of one page, newest activity first, and the cursor of the next page."""
    query = (
        select(Conversation.id, Conversation.last_message_at)
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(*conditions(actor, f))
    )
    if f.cursor:
        at, cid = decode_cursor(f.cursor)
        if at is None:  # the tail of conversations without messages, by id
            query = query.where(Conversation.last_message_at.is_(None), Conversation.id < cid)
        else:
            query = query.where(or_(
                Conversation.last_message_at < at,
                and_(Conversation.last_message_at == at, Conversation.id < cid),
                Conversation.last_message_at.is_(None),
            ))
    rows = (
        await session.execute(
            query.order_by(Conversation.last_message_at.desc().nulls_last(),
                           Conversation.id.desc()).limit(f.limit + 1)
        )
    ).all()
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    cursor = encode_cursor(rows[-1][1], rows[-1][0]) if more and rows else None
    return Page([r[0] for r in rows], cursor)


# Unread counts start where the handoff did: after the last message sent to the customer
# before the ticket opened (so the message that asked for a person is unread too).
HANDOFF_START = """
    SELECT COALESCE(max(o.seq), 0) FROM messages o
    WHERE o.conversation_id = c.id AND o.direction = 'out' AND o.created_at < t.opened_at"""

ROWS_SQL = text("""
SELECT c.id, c.owner, c.owner_reason, c.channel, c.account, c.last_intent,
       c.assigned_agent_id, u.name AS agent_name, c.last_message_at, c.owner_changed_at,
       ct.name AS contact_name, ct.phone_e164, t.id AS ticket_id, t.team_id, tm.name AS team_name,
       t.reason, t.opened_at, t.first_response_at, t.closed_at,
       li.body AS customer_text, li.kind AS customer_kind, li.created_at AS customer_at,
       lm.body AS last_text, lm.direction AS last_direction, lm.created_at AS last_at,
       COALESCE(lb.labels, ARRAY[]::varchar[]) AS labels,
       COALESCE(un.n, 0) AS unread
FROM conversations c
JOIN contacts ct ON ct.id = c.contact_id
LEFT JOIN users u ON u.id = c.assigned_agent_id
LEFT JOIN LATERAL (
    SELECT * FROM handoff_tickets x WHERE x.conversation_id = c.id
    ORDER BY x.opened_at DESC LIMIT 1) t ON true
LEFT JOIN teams tm ON tm.id = t.team_id
LEFT JOIN LATERAL (
    SELECT COALESCE(m.text, m.transcript) AS body, m.kind, m.created_at FROM messages m
    WHERE m.conversation_id = c.id AND m.direction = 'in'
    ORDER BY m.seq DESC LIMIT 1) li ON true
LEFT JOIN LATERAL (
    SELECT COALESCE(m.text, m.transcript) AS body, m.direction, m.created_at FROM messages m
    WHERE m.conversation_id = c.id ORDER BY m.seq DESC LIMIT 1) lm ON true
LEFT JOIN LATERAL (
    SELECT array_agg(l.label ORDER BY l.label) AS labels FROM conversation_labels l
    WHERE l.conversation_id = c.id) lb ON true
LEFT JOIN conversation_reads r ON r.conversation_id = c.id AND r.user_id = :user_id
LEFT JOIN LATERAL (
    SELECT count(*) AS n FROM messages m
    WHERE m.conversation_id = c.id AND m.direction = 'in'
      AND m.seq > GREATEST(COALESCE(r.last_read_seq, 0), (""" + HANDOFF_START + """))
      AND c.owner IN ('queued', 'human') AND t.closed_at IS NULL) un ON true
WHERE c.id = ANY(:ids)
""")


async def page_rows(
    session: AsyncSession, actor: Principal | None, ids: Sequence[uuid.UUID]
) -> list[Any]:
    """The list rows of ``ids``, in the order given."""
    if not ids:
        return []
    user_id = actor.id if actor else uuid.UUID(int=0)
    rows = (await session.execute(ROWS_SQL, {"ids": list(ids), "user_id": user_id})).all()
    order = {cid: i for i, cid in enumerate(ids)}
    return sorted(rows, key=lambda r: order[r.id])


UNREAD_SQL = text("""
SELECT count(*) FROM conversations c
JOIN handoff_tickets t ON t.conversation_id = c.id AND t.closed_at IS NULL
LEFT JOIN conversation_reads r ON r.conversation_id = c.id AND r.user_id = :user_id
JOIN messages m ON m.conversation_id = c.id AND m.direction = 'in'
     AND m.seq > GREATEST(COALESCE(r.last_read_seq, 0), (""" + HANDOFF_START + """))
WHERE c.owner IN ('queued', 'human') AND c.id = ANY(:ids)
""")


__all__ = [
    "ListFilter", "Page", "Status", "conditions", "decode_cursor", "encode_cursor", "page_ids",
    "page_rows", "search_condition",
]
