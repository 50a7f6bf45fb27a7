"""Sessions: when each login token was last used (the idle timeout), and when a user's
sessions were last ended (a token issued before that never works again, even after the
user is reactivated); who claimed each handoff (an agent keeps seeing what it handled,
not everything that ever passed through its team).

Revision ID: sec_0001
Revises: inbox_0001
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "sec_0001"
down_revision: str | Sequence[str] | None = "inbox_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("auth_tokens", sa.Column(
        "last_used_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False))
    op.add_column("users", sa.Column("sessions_ended_at", sa.DateTime(timezone=True)))
    op.add_column("handoff_tickets", sa.Column("claimed_by", postgresql.UUID(as_uuid=True)))
    # the agent who first wrote in each handoff claimed it (replies claim)
    op.execute("""
        UPDATE handoff_tickets t SET claimed_by = (
            SELECT m.author_id FROM messages m
            WHERE m.conversation_id = t.conversation_id AND m.author = 'agent'
              AND m.author_id IS NOT NULL AND m.created_at >= t.opened_at
            ORDER BY m.seq LIMIT 1)
        WHERE t.claimed_at IS NOT NULL
    """)


def downgrade() -> None:
    op.drop_column("handoff_tickets", "claimed_by")
    op.drop_column("users", "sessions_ended_at")
    op.drop_column("auth_tokens", "last_used_at")
