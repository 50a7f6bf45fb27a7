"""Vacuum procrastinate's job table after a few hundred finished jobs, not 20% of it.

Every inbound message's job row is inserted, updated twice and deleted. With the
default thresholds the dead rows and their index entries pile up between vacuums and
every job fetch walks them: at a steady 100 messages/s the fetch slowed until replies
took seconds. Vacuum runs without the cost pause on this small, hot table.

Revision ID: 0003_core
Revises: 0002_core
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_core"
down_revision: str | Sequence[str] | None = "0002_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("procrastinate_jobs", "procrastinate_events")


def upgrade() -> None:
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} SET (autovacuum_vacuum_scale_factor = 0, "
            "autovacuum_vacuum_threshold = 500, autovacuum_vacuum_insert_scale_factor = 0, "
            "autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_cost_delay = 0, "
            "autovacuum_analyze_scale_factor = 0.05)"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} RESET (autovacuum_vacuum_scale_factor, "
            "autovacuum_vacuum_threshold, autovacuum_vacuum_insert_scale_factor, "
            "autovacuum_vacuum_insert_threshold, autovacuum_vacuum_cost_delay, "
            "autovacuum_analyze_scale_factor)"
        )
