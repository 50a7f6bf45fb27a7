"""Tables of the LLM chain: every call made, and the chain configuration edited by admins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Float, Identity, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from handoff.conversations import Base


class LLMCall(Base):
    """One call of the chain (answer, intent or summary), whoever answered it."""

    __tablename__ = "llm_calls"
    __table_args__ = (Index("ix_llm_calls_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    purpose: Mapped[str] = mapped_column(String(16))  # answer | intent | summary | test
    model_group: Mapped[str] = mapped_column(String(100))  # the model_name asked first
    answered_by: Mapped[str | None] = mapped_column(String(100))  # model_name that answered
    provider: Mapped[str | None] = mapped_column(String(50))
    model: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))  # ok | fallback | timeout | error
    rejected: Mapped[str | None] = mapped_column(String(40))  # why our checks refused the draft
    latency_ms: Mapped[float] = mapped_column(Float)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cost_usd: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    # the conversation being answered (None for admin tests, warm-up); its channel filters
    # the analytics. No foreign key: the call log must never block a conversation's deletion.
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class LLMChainConfig(Base):
    """A saved chain configuration; the newest row is the one in use. Secrets are sealed."""

    __tablename__ = "llm_chain_configs"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    created_by: Mapped[str | None] = mapped_column(String(200))
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
