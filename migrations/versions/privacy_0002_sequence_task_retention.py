"""Retention of sequence steps left to do by hand: their texts are purged oldest first,
so the rows holding one are indexed by age (a partial index: only those rows; built
CONCURRENTLY, so a running Atiende keeps writing while it builds).

Revision ID: privacy_0002
Revises: privacy_0001
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "privacy_0002"
down_revision: str | Sequence[str] | None = "privacy_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_sequence_sends_text_created_at "
            "ON sequence_sends (created_at) WHERE text IS NOT NULL"
        )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_sequence_sends_text_created_at")
