"""Agents' access to a message's media: look the reference up, hand out a link or the bytes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import MediaNotFound
from bot.media.base import MediaStore
from bot.messages import MediaRef
from handoff.auth import Principal
from handoff.conversations import Conversation, Message
from handoff.roles import Role
from handoff.service import visible_to_agent


@dataclass(frozen=True, slots=True)
class MessageMedia:
    message_id: uuid.UUID
    kind: str
    media: MediaRef
    transcript: str | None


@dataclass(frozen=True, slots=True)
class MediaLink:
    url: str
    expires_in: int
    item: MessageMedia


class MediaAccess:
    """Finds the media of a message (only its key, type, size, sha256 live in PostgreSQL)."""

    def __init__(
        self, *, sessions: async_sessionmaker[AsyncSession], store: MediaStore, ttl: int
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._ttl = ttl

    async def of_message(self, message_id: uuid.UUID, viewer: Principal) -> MessageMedia:
        """The message's media, if ``viewer`` may see its conversation (agents: their own
        and their teams'; supervisors and admins: all), else MediaNotFound."""
        query = (
            select(Message.kind, Message.media, Message.transcript)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id == message_id)
        )
        if viewer.role is Role.AGENT:
            query = query.where(visible_to_agent(viewer.id))
        async with self._sessions() as session:
            row = (await session.execute(query)).one_or_none()
        if row is None or not row.media or not row.media.get("key"):
            raise MediaNotFound(f"message {message_id} has no stored media")
        fields = {k: v for k, v in row.media.items() if k in MediaRef.__slots__}
        return MessageMedia(message_id, row.kind, MediaRef(**fields), row.transcript)

    async def link(self, message_id: uuid.UUID, viewer: Principal) -> MediaLink:
        item = await self.of_message(message_id, viewer)
        assert item.media.key is not None
        url = await self._store.url(item.media.key, expires_in=self._ttl)
        return MediaLink(url, self._ttl, item)
