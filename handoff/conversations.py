"""The conversation record: contacts, conversations and messages (inbound and outbox).

It lives in ``handoff`` because the inbox reads and writes it as much as the bot
does; ``bot`` imports it, never the other way round. PostgreSQL is the record;
Redis only caches recent turns.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


SIMULATOR_CHANNEL = "simulator"
SIMULATOR_PREFIX = "sim:"


def contact_key(channel: str, phone: str) -> str:
    """The ``contacts.phone_e164`` a customer of ``channel`` is stored under.

    Anyone who reaches the simulator can type any number: its customers get contacts of
    their own (``sim:+52…``), so a simulated "BAJA" never opts a real customer out, and a
    simulated conversation never joins a real one's history, tickets or campaigns.
    """
    if channel == SIMULATOR_CHANNEL and not phone.startswith(SIMULATOR_PREFIX):
        return SIMULATOR_PREFIX + phone
    return phone


def display_phone(key: str) -> str:
    """The number behind a contact key (the simulator's prefix removed)."""
    return key.removeprefix(SIMULATOR_PREFIX)


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    phone_e164: Mapped[str | None] = mapped_column(String(20), unique=True)
    wa_lid: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    notes: Mapped[str | None] = mapped_column(Text)  # staff only, edited in the contact panel
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # erased (bot.privacy): number, LID and name gone; the row stays for the analytics
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("contact_id", "channel", "account", name="uq_conversation_key"),
        CheckConstraint("owner IN ('bot','queued','human','closed')", name="owner_valid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(16), default="bot", server_default="bot")
    owner_reason: Mapped[str | None] = mapped_column(String(200))
    owner_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    assigned_agent_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    last_intent: Mapped[str | None] = mapped_column(String(32))
    context_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_inbound_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_message_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # its customer's data was erased: closed for good, kept (without text) for analytics
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Message(Base):
    """One message in either direction. Outbound rows with status ``pending`` are the outbox."""

    __tablename__ = "messages"
    __table_args__ = (
        Index(
            "uq_messages_provider_id",
            "channel",
            "provider_message_id",
            unique=True,
            postgresql_where=text("provider_message_id IS NOT NULL"),
        ),
        UniqueConstraint("in_reply_to", "reply_seq", name="uq_messages_reply"),
        Index("ix_messages_conversation_seq", "conversation_id", "seq"),
        Index(
            "ix_messages_pending",
            "status",
            "direction",
            postgresql_where=text("status IN ('received','pending','sending')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    author: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    text: Mapped[str | None] = mapped_column(Text)
    transcript: Mapped[str | None] = mapped_column(Text)
    media: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # inbound: received -> processed | failed ; outbound: pending -> sending -> sent ->
    # delivered -> read | failed
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(32))
    confidence: Mapped[float | None] = mapped_column(Float)
    escalated: Mapped[bool | None] = mapped_column(Boolean)
    sources: Mapped[list[str] | None] = mapped_column(JSONB)
    in_reply_to: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reply_seq: Mapped[int | None] = mapped_column(Integer)
    author_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # outbound: when a sender took the row (status ``sending``); a row left there by a
    # dead sender is recovered by this time, never by its age
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# The same tables as Core ``Table`` objects, for hot paths (inbound, pipeline, outbox)
# that need no ORM identity map: Core statements compile once and are cached.
MESSAGES = cast(Table, Message.__table__)
CONVERSATIONS = cast(Table, Conversation.__table__)
CONTACTS = cast(Table, Contact.__table__)
