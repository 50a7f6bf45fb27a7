"""Sessions: when each login token was last used (the idle timeout), and when a user's
sessions were last ended (a token issued before that never works again, even after the
user is reactivated).

Revision ID: sec_0001
Revises: inbox_0001
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sec_0001"
down_revision: str | Sequence[str] | None = "inbox_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("auth_tokens", sa.Column(
        "last_used_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False))
    op.add_column("users", sa.Column("sessions_ended_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("users", "sessions_ended_at")
    op.drop_column("auth_tokens", "last_used_at")
