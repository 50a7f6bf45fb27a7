"""When a sender took an outbound row (``claimed_at``).

Rows left in ``sending`` by a dead sender were recovered by their age (``created_at``):
a reply that had waited minutes for its number (paced, or the number reconnecting) and
was just taken could be put back while it was being sent, and sent twice. Recovery now
goes by the claim time (rows claimed before this migration fall back to their age).

Revision ID: 0005_core
Revises: 0004_core
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_core"
down_revision: str | Sequence[str] | None = "0004_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE messages ADD COLUMN claimed_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE messages DROP COLUMN claimed_at")
