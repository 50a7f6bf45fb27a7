"""Tables of the blocked-contact detector: one row per watched conversation, one per number.

A conversation is one contact on one business number: a customer blocks a *number*, so
"probably blocked" is kept per conversation and only leaves that number's campaigns and
sequences out. Both subclass ``handoff.conversations.Base`` for the foreign keys.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from handoff.conversations import MESSAGES, Base

__all__ = ["BlockState", "ContactBlock", "DeliveryHealth"]


class BlockState:
    SUSPECTED = "suspected"  # enough undelivered messages; being watched (not shown)
    BLOCKED = "blocked"  # "probably blocked": shown in the inbox, left out of sends
    CLEARED = "cleared"  # a delivery, an inbound message or an agent cleared it


class ContactBlock(Base):
    """The detector's view of one conversation: suspected, blocked or cleared, and why."""

    __tablename__ = "contact_blocks"
    __table_args__ = (
        CheckConstraint("state IN ('suspected','blocked','cleared')", name="state_valid"),
        Index("ix_contact_blocks_open", "state", postgresql_where=text("state <> 'cleared'")),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    # the first undelivered message of the current run, and how many there are
    streak_from_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    undelivered: Mapped[int] = mapped_column(Integer, default=0)
    # time watched while the number's receipts were flowing (an outage does not count)
    observed_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # only messages after this one count (set when an agent clears the mark)
    baseline_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    suspected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    blocked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cleared_reason: Mapped[str | None] = mapped_column(String(32))
    cleared_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class DeliveryHealth(Base):
    """Whether a number's delivery receipts reach us: the guard against marking everyone
    during an outage on our side."""

    __tablename__ = "delivery_health"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_receipt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the newest message of the number known delivered: what was sent after it and is
    # still undelivered in many conversations at once points at an outage, not blocks
    last_delivered_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # messages up to this seq may have lost their receipts (before the first receipt
    # ever seen, or during an outage): they are never evidence of a block
    outage_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    outage_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outages: Mapped[int] = mapped_column(Integer, default=0)


# The detector's scan: outbound messages accepted by WhatsApp and never reported
# delivered. Declared here (the index belongs to this feature), on ``messages``.
UNDELIVERED_INDEX = Index(
    "ix_messages_undelivered",
    MESSAGES.c.channel, MESSAGES.c.conversation_id, MESSAGES.c.seq,
    postgresql_where=text("direction = 'out' AND status = 'sent'"),
)
