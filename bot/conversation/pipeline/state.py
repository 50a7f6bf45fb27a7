"""What the pipeline reads: the waiting messages of conversations and each one's state."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.conversation.pipeline.sql import PENDING_SQL
from bot.db import AutocommitPool
from bot.messages import MediaRef, MessageKind
from handoff.conversations import CONTACTS, CONVERSATIONS
from handoff.ownership import Owner

BATCH = 50  # the most waiting messages read per conversation at once


@dataclass(frozen=True, slots=True)
class Pending:
    """A stored inbound message not processed yet."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    kind: str
    text: str | None
    transcript: str | None
    attempts: int
    media: dict[str, Any] | None = None
    voice_problem: str | None = None  # AudioUnusable.code, "refused" (not stored), or "failed"
    arrived: float | None = None  # time.monotonic() when it was accepted (None: unknown)

    def waited(self) -> float:
        """Seconds since it was accepted: how far behind the worker is. 0 when unknown, and
        for anything but text (a voice note's wait is mostly its transcription, no queue)."""
        if self.arrived is None or self.kind != MessageKind.TEXT.value:
            return 0.0
        return max(0.0, time.monotonic() - self.arrived)

    @property
    def media_ref(self) -> MediaRef | None:
        if not self.media or not self.media.get("mime_type"):
            return None
        return MediaRef(**{k: v for k, v in self.media.items() if k in MediaRef.__slots__})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A conversation's state as last read (or as the pipeline left it)."""

    owner: Owner
    contact_name: str | None
    context_started_at: datetime | None
    last_inbound_at: datetime | None
    channel: str


def is_fresh(snapshot: Snapshot, now: datetime, ttl: timedelta) -> bool:
    """A new context: the conversation's first message, or after ``ttl`` of silence."""
    return snapshot.last_inbound_at is None or now - snapshot.last_inbound_at > ttl


class StateReader:
    """Reads the waiting messages and the state of conversations."""

    def __init__(
        self, *, sessions: async_sessionmaker[AsyncSession], fast: AutocommitPool
    ) -> None:
        self._sessions = sessions
        self._fast = fast

    async def pending(
        self, conversation_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[list[Pending], Snapshot]]:
        """The next batch of unprocessed messages of each conversation with its state, in
        one round trip (autocommit: no transaction to open and close). Conversations
        with nothing waiting are left out."""
        async with self._fast.connection() as connection:
            cursor = await connection.execute(
                PENDING_SQL, {"ids": conversation_ids, "limit": BATCH}
            )
            rows = await cursor.fetchall()
        found: dict[uuid.UUID, tuple[list[Pending], Snapshot]] = {}
        for row in rows:
            if row[1] not in found:
                found[row[1]] = ([], Snapshot(Owner(row[7]), row[8], row[9], row[10], row[11]))
            # when it arrived, on this process's monotonic clock (PostgreSQL measured
            # how long it has waited, so the two clocks need not agree)
            arrived = time.monotonic() - max(0.0, float(row[12] or 0.0))
            found[row[1]][0].append(Pending(row[0], row[1], row[2], row[3], row[4], row[5],
                                            row[6], arrived=arrived))
        return found

    async def snapshot(self, conversation_id: uuid.UUID) -> Snapshot:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(
                        CONVERSATIONS.c.owner, CONTACTS.c.name,
                        CONVERSATIONS.c.context_started_at,
                        CONVERSATIONS.c.last_inbound_at, CONVERSATIONS.c.channel,
                    )
                    .join(CONTACTS, CONTACTS.c.id == CONVERSATIONS.c.contact_id)
                    .where(CONVERSATIONS.c.id == conversation_id)
                )
            ).one()
            return Snapshot(
                Owner(row.owner), row.name, row.context_started_at, row.last_inbound_at,
                row.channel,
            )
