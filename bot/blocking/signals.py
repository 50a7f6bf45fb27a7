"""What a delivery receipt tells the detector: the customer's phone is reachable (their
mark clears), and the number's receipts are flowing (its health)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.logs import get_logger

__all__ = ["DeliverySignals", "HEALTH_WRITE_EVERY"]

log = get_logger("atiende.blocking")

# A busy number gets many receipts a second: its health row is written at most this
# often, so concurrent receipts do not queue on one row lock.
HEALTH_WRITE_EVERY = timedelta(seconds=30)

_CLEAR = text(
    """
    WITH open AS (
      SELECT conversation_id, state FROM contact_blocks
      WHERE conversation_id = ANY(:ids) AND state <> 'cleared'
      FOR UPDATE
    )
    UPDATE contact_blocks b
    SET state = 'cleared', cleared_at = :now, cleared_reason = 'delivered', cleared_by = NULL
    FROM open WHERE b.conversation_id = open.conversation_id
    RETURNING b.conversation_id, open.state AS was
    """
)

# The first receipt a number ever gets draws its evidence line: messages sent before
# it may have lost their receipts (statuses not subscribed yet, say) and never count.
_FIRST_RECEIPT = text(
    """
    INSERT INTO delivery_health (channel, account, last_receipt_at, outage_seq, outages)
    SELECT DISTINCT c.channel, c.account, :now,
           (SELECT coalesce(max(seq), 0) FROM messages), 0
    FROM conversations c WHERE c.id = ANY(:ids)
    ON CONFLICT (channel, account) DO NOTHING
    """
)

_HEALTHY = text(
    """
    UPDATE delivery_health h SET last_receipt_at = :now
    FROM (SELECT DISTINCT channel, account FROM conversations WHERE id = ANY(:ids)) c
    WHERE h.channel = c.channel AND h.account = c.account AND h.last_receipt_at < :stale
    """
)


class DeliverySignals:
    """The ``DeliveryListener`` of ``bot.channels.receipts``: runs in the receipt's
    transaction."""

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock

    async def delivered(
        self, session: AsyncSession, conversation_ids: Sequence[uuid.UUID]
    ) -> None:
        now = self._clock()
        ids = list(dict.fromkeys(conversation_ids))
        cleared = (await session.execute(_CLEAR, {"ids": ids, "now": now})).all()
        for row in cleared:
            if row.was == "blocked":
                log.info("blocking.cleared", conversation_id=str(row.conversation_id),
                         reason="delivered")
        await session.execute(_FIRST_RECEIPT, {"ids": ids, "now": now})
        await session.execute(_HEALTHY, {"ids": ids, "now": now, "stale": now - HEALTH_WRITE_EVERY})
