"""The WhatsApp numbers this deployment connects (neonize), and their health.

The whatsmeow session keys themselves live in whatsmeow's own tables (same database
by default); this row holds what the admin pages and the other nodes need to see.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from handoff.conversations import Base


class WhatsAppNumber(Base):
    __tablename__ = "whatsapp_numbers"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    account: Mapped[str] = mapped_column(String(20), unique=True)  # E.164 of the business
    label: Mapped[str | None] = mapped_column(String(100))
    session_id: Mapped[str] = mapped_column(String(64))  # whatsmeow session uuid
    jid: Mapped[str | None] = mapped_column(String(100))  # linked device, once paired
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    state: Mapped[str] = mapped_column(String(24), default="stopped", server_default="stopped")
    detail: Mapped[str | None] = mapped_column(Text)
    owner_node: Mapped[str | None] = mapped_column(String(100))
    qr: Mapped[str | None] = mapped_column(Text)
    qr_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pairing_phone: Mapped[str | None] = mapped_column(String(20))
    pairing_code: Mapped[str | None] = mapped_column(String(20))
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    restarts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
