"""Campaign tables: contact lists ("carteras"), their entries, campaigns and recipients.

They subclass ``handoff.conversations.Base`` (same MetaData as ``messages``) so a recipient
links to the outbox row that carries its message: delivery states are read from the
message, never copied.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from handoff.conversations import Base

__all__ = ["Campaign", "CampaignRecipient", "ContactList", "ContactListEntry"]


class ContactList(Base):
    """A cartera: contacts uploaded from one CSV, optionally assigned to an agent or team."""

    __tablename__ = "contact_lists"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(32), default="csv_upload")
    fields: Mapped[list[str]] = mapped_column(JSONB, default=list)  # custom field names
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)  # rejected rows
    # users.id and teams.id (handoff.tables, another MetaData: checked by the service,
    # no FK).
    assigned_agent_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    assigned_team_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ContactListEntry(Base):
    __tablename__ = "contact_list_entries"
    __table_args__ = (UniqueConstraint("list_id", "phone_e164", name="uq_list_entry_phone"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    list_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contact_lists.id", ondelete="CASCADE"), index=True
    )
    row_number: Mapped[int] = mapped_column(Integer)
    phone_e164: Mapped[str] = mapped_column(String(20))
    name: Mapped[str | None] = mapped_column(String(200))
    fields: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(
            "status IN ('draft','running','paused','completed','cancelled')", name="status_valid"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    list_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contact_lists.id"))
    channel: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(64))
    variants: Mapped[list[str]] = mapped_column(JSONB)
    # Cloud API numbers: an approved template used outside the 24-hour window.
    template_name: Mapped[str | None] = mapped_column(String(200))
    template_language: Mapped[str | None] = mapped_column(String(16))
    template_params: Mapped[list[str]] = mapped_column(JSONB, default=list)
    schedule: Mapped[dict[str, Any]] = mapped_column(JSONB)  # Window as JSON
    pacing: Mapped[dict[str, Any]] = mapped_column(JSONB)  # Pacing as JSON
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    launched_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    launched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # scheduler state: when the next message may be created, and the current burst
    next_send_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    burst_count: Mapped[int] = mapped_column(Integer, default=0)
    burst_size: Mapped[int] = mapped_column(Integer, default=0)
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)  # audit trail
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class CampaignRecipient(Base):
    """One contact of one campaign: unique per phone, linked to the message it got."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone_e164", name="uq_campaign_recipient_phone"),
        CheckConstraint(
            "status IN ('pending','queued','skipped','cancelled')", name="status_valid"
        ),
        Index("ix_campaign_recipients_next", "campaign_id", "status", "position"),
        Index("ix_campaign_recipients_queued", "channel", "account", "queued_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    campaign_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    phone_e164: Mapped[str] = mapped_column(String(20))
    name: Mapped[str | None] = mapped_column(String(200))
    fields: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    # denormalized from the campaign so per-number caps are one indexed count
    channel: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(Text)
    variant: Mapped[int | None] = mapped_column(Integer)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), unique=True
    )
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
