"""Sequence tables: definitions, enrollments (one contact on one number, walking the steps),
what each step did, and the intent watcher's cursor.

They subclass ``handoff.conversations.Base`` (same MetaData as ``messages``) so a step
links to the outbox row that carried it: delivery states are read from the message.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from handoff.conversations import Base

__all__ = ["IntentCursor", "Sequence", "SequenceEnrollment", "SequenceSend"]


class Sequence(Base):
    """A named list of follow-up steps and the rules that stop or pause it."""

    __tablename__ = "sequences"
    __table_args__ = (
        CheckConstraint("status IN ('active','deleted')", name="status_valid"),
        CheckConstraint("on_reply IN ('stop','pause','continue')", name="on_reply_valid"),
        CheckConstraint("on_human IN ('stop','pause')", name="on_human_valid"),
        CheckConstraint("on_opt_out IN ('stop','pause')", name="on_opt_out_valid"),
        Index("uq_sequences_active_name", "name", unique=True,
              postgresql_where=text("status = 'active'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    # the number enrollments by phone (API, contact list) are followed up from;
    # enrollments from a conversation (inbox, intent) use that conversation's number
    channel: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64))  # of the steps' allowed hours
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)  # values.Step as JSON
    on_reply: Mapped[str] = mapped_column(String(8))
    on_human: Mapped[str] = mapped_column(String(8))
    on_opt_out: Mapped[str] = mapped_column(String(8))
    auto_intent: Mapped[str | None] = mapped_column(String(64))
    auto_escalated_only: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    deleted_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SequenceEnrollment(Base):
    """One contact on one number walking a sequence: the next step and when it is due."""

    __tablename__ = "sequence_enrollments"
    __table_args__ = (
        CheckConstraint("state IN ('active','stopped','completed')", name="state_valid"),
        CheckConstraint("source IN ('agent','api','list','intent')", name="source_valid"),
        # the tick's query: due steps come from this index, never from a scan
        Index("ix_sequence_enrollments_due", "due_at",
              postgresql_where=text("state = 'active'")),
        # a contact is in a sequence once at a time (a new enrollment after it ends is fine)
        Index("uq_sequence_enrollments_active", "sequence_id", "conversation_id", unique=True,
              postgresql_where=text("state = 'active'")),
        Index("ix_sequence_enrollments_sequence", "sequence_id", "enrolled_at"),
        Index("ix_sequence_enrollments_conversation", "conversation_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    sequence_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sequences.id", ondelete="CASCADE")
    )
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    phone_e164: Mapped[str] = mapped_column(String(20))
    name: Mapped[str | None] = mapped_column(String(200))
    fields: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)  # template values
    state: Mapped[str] = mapped_column(String(16), default="active")
    stop_reason: Mapped[str | None] = mapped_column(String(64))
    paused_reason: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    enrolled_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    enrolled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the conversation's last message at enrollment: customer messages after it are replies
    enrolled_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    next_step: Mapped[int] = mapped_column(Integer, default=0)
    # steps written to the outbox (the API's ``steps_sent`` counts the ones the channel
    # accepted: a step withdrawn or refused is not sent)
    steps_queued: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_step_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class SequenceSend(Base):
    """What one step of one enrollment did: a message in the outbox, or a task by hand.

    Unique per (enrollment, step): a step is written once, in the same transaction that
    moves the enrollment past it, so a crash can never send it twice.
    """

    __tablename__ = "sequence_sends"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step", name="uq_sequence_sends_step"),
        CheckConstraint("kind IN ('message','manual')", name="kind_valid"),
        Index("ix_sequence_sends_sequence", "sequence_id", "step"),
        Index("ix_sequence_sends_open_tasks", "created_at",
              postgresql_where=text("kind = 'manual' AND done_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sequence_enrollments.id", ondelete="CASCADE")
    )
    sequence_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sequences.id", ondelete="CASCADE")
    )
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    step: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), unique=True
    )
    text: Mapped[str | None] = mapped_column(Text)  # a task: what to send by hand
    reason: Mapped[str | None] = mapped_column(String(64))  # why by hand
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class IntentCursor(Base):
    """How far the intent watcher has read the inbound messages (one row)."""

    __tablename__ = "sequence_intent_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
