"""The customer-data tables (migration ``privacy_0001``): erasure log, kept opt-outs,
retention progress. The salt and ``privacy_phone_hash()`` live in the migration only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from handoff.conversations import Base


class ErasureRecord(Base):
    """One customer erased: who did it and when, what went, what is still to delete.

    Holds no personal data: the contact id and the salted hashes of its keys (number,
    LID) identify the person only to someone who already knows the number."""

    __tablename__ = "privacy_erasures"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    key_hashes: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    opted_out: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    source: Mapped[str] = mapped_column(String(16))  # api | cli | page | reapply
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    actor_email: Mapped[str | None] = mapped_column(String(254))
    requested_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    # objects (media, memory still to delete) -> settling (a last memory sweep) -> done
    state: Mapped[str] = mapped_column(String(16))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    conversation_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)))
    media_keys: Mapped[list[str]] = mapped_column(ARRAY(Text))
    pending_keys: Mapped[list[str]] = mapped_column(ARRAY(Text))
    last_error: Mapped[str | None] = mapped_column(Text)
    objects_done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class KeptOptOut(Base):
    """An erased customer's opt-out: only the salted hash of their number."""

    __tablename__ = "privacy_optouts"

    phone_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RetentionProgress(Base):
    """How far the retention job got for one kind of data, and how much it purged."""

    __tablename__ = "privacy_retention"

    what: Mapped[str] = mapped_column(String(32), primary_key=True)
    watermark: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    purged: Mapped[int] = mapped_column(BigInteger, server_default="0")
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
