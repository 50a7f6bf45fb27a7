"""Delivery receipts from any WhatsApp channel: they move our outbound rows forward.

A receipt names provider message ids (what the channel answered when we sent) and a
status. Statuses only move forward (sent → delivered → read → played); WhatsApp can
deliver them out of order, and a late "delivered" must not undo a "read". A failure
is recorded with its provider error code unless the message was already read.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.delivery import DeliveryStatus
from bot.logs import get_logger
from handoff.conversations import Message

__all__ = ["DeliveryStatus", "Receipt", "ReceiptRecorder"]

log = get_logger("atiende.receipts")

# Which current statuses each new status may replace (forward only).
_REPLACES: dict[DeliveryStatus, tuple[str, ...]] = {
    DeliveryStatus.SENT: ("pending", "sending"),
    DeliveryStatus.DELIVERED: ("pending", "sending", "sent"),
    DeliveryStatus.READ: ("pending", "sending", "sent", "delivered"),
    DeliveryStatus.PLAYED: ("pending", "sending", "sent", "delivered", "read"),
    DeliveryStatus.FAILED: ("pending", "sending", "sent", "delivered"),
}


@dataclass(frozen=True, slots=True)
class Receipt:
    """The provider says these messages (ids it gave us) reached ``status``."""

    channel: str
    provider_message_ids: tuple[str, ...]
    status: DeliveryStatus
    at: datetime | None = None
    error: str | None = None


# Statuses that prove the customer's phone received the message.
REACHED = frozenset({DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.PLAYED})


class DeliveryListener(Protocol):
    """Told, inside the receipt's own transaction, which messages (conversation, seq) just
    reached the customer (``bot.blocking`` clears its marks and watches number health)."""

    async def delivered(
        self, session: AsyncSession, messages: Sequence[tuple[uuid.UUID, int]]
    ) -> None: ...


class ReceiptRecorder:
    """Applies receipts to outbound message rows, by (channel, provider message id)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        listener: DeliveryListener | None = None,
    ) -> None:
        self._sessions = sessions
        self._listener = listener

    async def record(self, receipt: Receipt) -> int:
        """Apply ``receipt``; return how many rows moved (0 for unknown or stale ids)."""
        if not receipt.provider_message_ids:
            return 0
        values: dict[str, object] = {"status": receipt.status.value}
        if receipt.status is DeliveryStatus.FAILED:
            values["error"] = receipt.error or "failed (no reason given)"
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(Message)
                .where(
                    Message.channel == receipt.channel,
                    Message.direction == "out",
                    Message.provider_message_id.in_(receipt.provider_message_ids),
                    Message.status.in_(_REPLACES[receipt.status]),
                )
                .values(**values)
                .returning(Message.id, Message.conversation_id, Message.seq)
            )
            rows = result.all()
            moved = len(rows)
            if rows and self._listener is not None and receipt.status in REACHED:
                await self._listener.delivered(
                    session, [(r.conversation_id, r.seq) for r in rows])
        log.info(
            "receipt.recorded", channel=receipt.channel, status=receipt.status.value,
            provider_message_ids=list(receipt.provider_message_ids), moved=moved,
            error=receipt.error,
        )
        return moved

    async def record_many(self, receipts: Sequence[Receipt]) -> int:
        total = 0
        for receipt in receipts:
            total += await self.record(receipt)
        return total
