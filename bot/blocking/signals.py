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

# A receipt for an older message (a "read" after the "delivered", say) refreshes the
# number's health row at most this often, so concurrent receipts rarely queue on its
# lock; a receipt for a newer message always moves the delivered line forward.
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

# The newest delivered message per number among this receipt's messages.
_PER_NUMBER = """
    SELECT c.channel, c.account, max(v.seq) AS seq
    FROM unnest(CAST(:ids AS uuid[]), CAST(:seqs AS bigint[])) AS v(id, seq)
    JOIN conversations c ON c.id = v.id
    GROUP BY c.channel, c.account
"""

# The first receipt a number ever gets draws its evidence line: messages sent before
# it may have lost their receipts (statuses not subscribed yet, say) and never count.
_FIRST_RECEIPT = text(
    f"""
    INSERT INTO delivery_health (channel, account, last_receipt_at, last_delivered_seq,
                                 outage_seq, outages)
    SELECT d.channel, d.account, :now, d.seq, (SELECT coalesce(max(seq), 0) FROM messages), 0
    FROM ({_PER_NUMBER}) AS d
    ON CONFLICT (channel, account) DO NOTHING
    """
)

_HEALTHY = text(
    f"""
    UPDATE delivery_health h
    SET last_receipt_at = :now, last_delivered_seq = greatest(h.last_delivered_seq, d.seq)
    FROM ({_PER_NUMBER}) AS d
    WHERE h.channel = d.channel AND h.account = d.account
      AND (h.last_delivered_seq < d.seq OR h.last_receipt_at < :stale)
    """
)


class DeliverySignals:
    """The ``DeliveryListener`` of ``bot.channels.receipts``: runs in the receipt's
    transaction."""

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock

    async def delivered(
        self, session: AsyncSession, messages: Sequence[tuple[uuid.UUID, int]]
    ) -> None:
        now = self._clock()
        ids = list(dict.fromkeys(conversation_id for conversation_id, _ in messages))
        cleared = (await session.execute(_CLEAR, {"ids": ids, "now": now})).all()
        for row in cleared:
            if row.was == "blocked":
                log.info("blocking.cleared", conversation_id=str(row.conversation_id),
                         reason="delivered")
        params = {"ids": [c for c, _ in messages], "seqs": [s for _, s in messages],
                  "now": now, "stale": now - HEALTH_WRITE_EVERY}
        await session.execute(_FIRST_RECEIPT, params)
        await session.execute(_HEALTHY, params)
