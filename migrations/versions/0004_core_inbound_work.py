"""The inbound work list: one row per conversation with stored messages waiting.

Replaces one procrastinate job per inbound message (a job insert with its event rows
and notification, a fetch, a finish and a delete: about 1 ms of PostgreSQL per
message) with one row upsert per message and a few statements per batch of
conversations (bot/inbound_queue.py). Waiting inbound jobs are moved here.

Revision ID: 0004_core
Revises: 0003_core
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_core"
down_revision: str | Sequence[str] | None = "0003_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROCESS_TASK = "atiende.process_conversation"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE inbound_work (
            conversation_id uuid PRIMARY KEY
                REFERENCES conversations (id) ON DELETE CASCADE,
            version bigint NOT NULL DEFAULT 1,
            enqueued_at timestamptz NOT NULL DEFAULT now(),
            not_before timestamptz NOT NULL DEFAULT now(),
            claimed_by uuid,
            claimed_until timestamptz,
            attempts integer NOT NULL DEFAULT 0,
            last_error text
        )
        """
    )
    # a small table rewritten by every message: vacuum it often, without the cost pause
    op.execute(
        "ALTER TABLE inbound_work SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0, "
        "autovacuum_vacuum_threshold = 500, autovacuum_vacuum_insert_scale_factor = 0, "
        "autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_cost_delay = 0, "
        "autovacuum_analyze_scale_factor = 0.05)"
    )
    op.execute(
        f"""
        INSERT INTO inbound_work (conversation_id)
        SELECT DISTINCT (j.args->>'conversation_id')::uuid FROM procrastinate_jobs j
        JOIN conversations c ON c.id = (j.args->>'conversation_id')::uuid
        WHERE j.task_name = '{PROCESS_TASK}' AND j.status IN ('todo', 'doing', 'failed')
        ON CONFLICT DO NOTHING
        """
    )
    op.execute(
        f"DELETE FROM procrastinate_jobs WHERE task_name = '{PROCESS_TASK}' "
        "AND status IN ('todo', 'doing', 'failed')"
    )


def downgrade() -> None:
    op.execute(
        f"""
        SELECT procrastinate_defer_jobs_v1(ARRAY(
            SELECT ROW('inbound', '{PROCESS_TASK}', 0, 'conv:' || conversation_id::text,
                       NULL, jsonb_build_object('conversation_id', conversation_id::text),
                       NULL::timestamptz)::procrastinate_job_to_defer_v1
            FROM inbound_work))
        """
    )
    op.execute("DROP TABLE inbound_work")
