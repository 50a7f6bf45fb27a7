"""usage records: transcriptions log, the conversation of each LLM call

Revision ID: ops_0002
Revises: ops_0001, llm_0001
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ops_0002"
down_revision: str | Sequence[str] | None = "ops_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "llm_0001"


def upgrade() -> None:
    op.create_table(
        "transcriptions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True),
                  server_default=sa.text("clock_timestamp()"), nullable=False),
        sa.Column("message_id", sa.UUID(), nullable=False),
        sa.Column("conversation_id", sa.UUID(), nullable=False),
        sa.Column("backend", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("audio_seconds", sa.Float(), nullable=True),
        sa.Column("elapsed_seconds", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_transcriptions_created_at", "transcriptions", ["created_at"])
    op.add_column("llm_calls", sa.Column("conversation_id", sa.UUID(), nullable=True))


def downgrade() -> None:
    op.drop_column("llm_calls", "conversation_id")
    op.drop_index("ix_transcriptions_created_at", table_name="transcriptions")
    op.drop_table("transcriptions")
