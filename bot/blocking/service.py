"""Blocked contacts as staff see them: the mark and its evidence, clearing it, the list;
and the one check campaigns and sequences make before sending."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.blocking.models import BlockState, ContactBlock
from bot.clock import Clock
from bot.errors import NotFound
from bot.logs import get_logger
from handoff.access import require_visible
from handoff.auth import Principal
from handoff.conversations import Contact, Conversation, Message, display_phone

__all__ = ["BlockView", "BlockedContacts", "is_blocked"]

log = get_logger("atiende.blocking")


@dataclass(frozen=True, slots=True)
class BlockView:
    """A conversation marked "probably blocked", with what the detector saw."""

    conversation_id: uuid.UUID
    contact_phone: str | None
    contact_name: str | None
    channel: str
    account: str
    state: str
    blocked_at: datetime | None
    undelivered: int
    evidence: dict[str, Any]
    cleared_at: datetime | None
    cleared_reason: str | None


async def is_blocked(session: AsyncSession, conversation_id: uuid.UUID) -> bool:
    """Whether this conversation is marked "probably blocked" right now."""
    found = (
        await session.execute(
            text("SELECT 1 FROM contact_blocks WHERE conversation_id = :id AND state = 'blocked'"),
            {"id": conversation_id},
        )
    ).first()
    return found is not None


class BlockedContacts:
    """Reads and clears the marks (the detector sets them: ``bot.blocking.detector``)."""

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def of_conversation(
        self, conversation_id: uuid.UUID, *, actor: Principal | None = None
    ) -> BlockView | None:
        """The mark of one conversation, or None when it is not marked (``actor``: only if
        they may see the conversation)."""
        if actor is not None:
            async with self._sessions() as session:
                await _visible(session, actor, conversation_id)
        views = await self._views(ContactBlock.conversation_id == conversation_id,
                                  ContactBlock.state == BlockState.BLOCKED)
        return views[0] if views else None

    async def marked(self, *, limit: int = 200) -> list[BlockView]:
        """Every conversation marked "probably blocked", most recent first."""
        return await self._views(ContactBlock.state == BlockState.BLOCKED, limit=limit)

    async def clear(self, conversation_id: uuid.UUID, *, actor: Principal) -> BlockView:
        """An agent says the customer is reachable: the mark goes, and the messages sent
        so far are no longer evidence (only new undelivered ones count)."""
        now = self._clock()
        by = actor.id
        async with self._sessions() as session, session.begin():
            await _visible(session, actor, conversation_id)
            block = (
                await session.execute(
                    select(ContactBlock)
                    .where(ContactBlock.conversation_id == conversation_id)
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if block is None or block.state != BlockState.BLOCKED:
                raise NotFound(
                    f"conversation {conversation_id} is not marked as probably blocked"
                )
            block.state = BlockState.CLEARED
            block.cleared_at = now
            block.cleared_reason = "agent"
            block.cleared_by = by
            block.baseline_seq = (
                await session.execute(
                    select(func.coalesce(func.max(Message.seq), 0))
                    .where(Message.conversation_id == conversation_id)
                )
            ).scalar_one()
        log.info("blocking.cleared", conversation_id=str(conversation_id), reason="agent",
                 by=str(by))
        views = await self._views(ContactBlock.conversation_id == conversation_id)
        return views[0]

    async def _views(self, *conditions: Any, limit: int = 200) -> list[BlockView]:
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(ContactBlock, Contact.phone_e164, Contact.name)
                    .join(Conversation, Conversation.id == ContactBlock.conversation_id)
                    .join(Contact, Contact.id == Conversation.contact_id)
                    .where(*conditions)
                    .order_by(ContactBlock.blocked_at.desc().nulls_last())
                    .limit(limit)
                )
            ).all()
        return [
            BlockView(
                conversation_id=b.conversation_id,
                contact_phone=display_phone(phone) if phone else None, contact_name=name,
                channel=b.channel, account=b.account, state=b.state, blocked_at=b.blocked_at,
                undelivered=b.undelivered, evidence=dict(b.evidence or {}),
                cleared_at=b.cleared_at, cleared_reason=b.cleared_reason,
            )
            for b, phone, name in rows
        ]


async def _visible(session: AsyncSession, actor: Principal, conversation_id: uuid.UUID) -> None:
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} not found")
    await require_visible(session, actor, conversation)
