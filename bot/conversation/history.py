"""Conversation history from PostgreSQL (the record behind Redis memory)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.messages import Turn
from handoff.conversations import Conversation, Message

_ROLE = {
    "customer": "customer", "bot": "bot", "agent": "agent", "owner_phone": "agent",
    "campaign": "bot",  # the campaign message the customer may be answering
    "sequence": "bot",  # likewise a follow-up step
}


class HistoryLoader:
    """Loads the turns of a conversation since a cutoff (and its context start)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, limit: int = 40) -> None:
        self._sessions = sessions
        self._limit = limit

    async def __call__(self, conversation_id: uuid.UUID, since: datetime) -> Sequence[Turn]:
        async with self._sessions() as session:
            started = (
                await session.execute(
                    select(Conversation.context_started_at).where(
                        Conversation.id == conversation_id
                    )
                )
            ).scalar_one_or_none()
            cutoff = max(since, started) if started else since
            rows = (
                await session.execute(
                    select(Message.author, Message.text, Message.transcript, Message.created_at)
                    .where(
                        Message.conversation_id == conversation_id,
                        Message.created_at >= cutoff,
                        Message.author.in_(list(_ROLE)),
                    )
                    .order_by(Message.seq.desc())
                    .limit(self._limit)
                )
            ).all()
        return [
            Turn(_ROLE[r.author], r.text or r.transcript or "", r.created_at)
            for r in reversed(rows)
        ]
