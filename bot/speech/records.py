"""The transcription log: one row per voice note the pipeline tried to transcribe."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Float, Identity, Index, String, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from handoff.conversations import Base


class TranscriptionRecord(Base):
    """Which backend transcribed a voice note, how much audio, how long it took."""

    __tablename__ = "transcriptions"
    __table_args__ = (Index("ix_transcriptions_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    # no foreign keys: a usage log must never block deleting a conversation
    message_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    conversation_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    backend: Mapped[str] = mapped_column(String(100))  # faster-whisper | provider:<model> | …
    outcome: Mapped[str] = mapped_column(String(16))  # ok | unusable | failed
    audio_seconds: Mapped[float | None] = mapped_column(Float)
    elapsed_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
