"""Index procrastinate's job locks among waiting jobs.

procrastinate's fetch query skips a job whose lock (one per conversation, one per
number) is held by a running or an earlier waiting job, with a NOT EXISTS over
the other jobs of that lock. Its own indexes only cover (id, lock), so every fetch
walked all waiting jobs: ~70 ms per fetch with 1,000 queued messages, growing with
the backlog. This index makes the check a lookup (0.1 ms).

Revision ID: 0002_core
Revises: 0001_core
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002_core"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS atiende_jobs_waiting_lock ON procrastinate_jobs (lock) "
        "WHERE status IN ('todo', 'doing')"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS atiende_jobs_waiting_lock")
