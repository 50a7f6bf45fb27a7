"""API keys and outgoing webhooks (subscriptions, delivery log, the triggers that queue them)

Events are recorded by triggers in the same transaction as the change that causes them,
whatever code path made it (the ingest statement, the pipeline's run commit, an agent's
action), and each delivery is queued as a procrastinate job in that transaction too
(``procrastinate_defer_jobs_v1``, procrastinate's stable SQL entry point): a delivery
can be retried, never lost. With no subscription the triggers only look at an empty
table.

Revision ID: prod_0001
Revises: 0005_core
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "prod_0001"
down_revision: str | Sequence[str] | None = "0005_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "handoff_0002"

DEFER = """
    SELECT procrastinate_defer_jobs_v1(array_agg(ROW(
        'webhooks', 'atiende.webhook_deliver', 0, NULL, NULL,
        jsonb_build_object('delivery_id', d.id), NULL)::procrastinate_job_to_defer_v1))
    INTO job_ids FROM d;
"""

MESSAGES_TRIGGER = f"""
CREATE FUNCTION atiende_webhooks_message_created() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    job_ids bigint[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhooks WHERE active AND events ? 'message.created') THEN
        RETURN NULL;
    END IF;
    WITH d AS (
        INSERT INTO webhook_deliveries (webhook_id, event, conversation_id, payload)
        SELECT w.id, 'message.created', n.conversation_id, jsonb_build_object(
            'event', 'message.created', 'conversation_id', n.conversation_id,
            'message', jsonb_build_object(
                'id', n.id, 'direction', n.direction, 'author', n.author, 'kind', n.kind,
                'channel', n.channel, 'text', n.text, 'status', n.status,
                'in_reply_to', n.in_reply_to, 'created_at', n.created_at))
        FROM new_rows n CROSS JOIN webhooks w
        WHERE w.active AND w.events ? 'message.created'
        ORDER BY n.seq
        RETURNING id
    )
    {DEFER}
    RETURN NULL;
END $$;
CREATE TRIGGER atiende_webhooks_message_created AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION atiende_webhooks_message_created();
"""

# bot -> queued: escalated; -> human: claimed (an agent took it, or typed on the phone);
# queued/human -> bot/closed: resolved (handed back or closed).
CONVERSATIONS_TRIGGER = f"""
CREATE FUNCTION atiende_webhooks_owner_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ev text;
    job_ids bigint[];
BEGIN
    ev := CASE
        WHEN NEW.owner = 'queued' AND OLD.owner = 'bot' THEN 'conversation.escalated'
        WHEN NEW.owner = 'human' THEN 'conversation.claimed'
        WHEN NEW.owner IN ('bot', 'closed') AND OLD.owner IN ('queued', 'human')
            THEN 'conversation.resolved'
    END;
    IF ev IS NULL OR NOT EXISTS (SELECT 1 FROM webhooks WHERE active AND events ? ev) THEN
        RETURN NULL;
    END IF;
    WITH d AS (
        INSERT INTO webhook_deliveries (webhook_id, event, conversation_id, payload)
        SELECT w.id, ev, NEW.id, jsonb_build_object(
            'event', ev, 'conversation_id', NEW.id,
            'conversation', jsonb_build_object(
                'id', NEW.id, 'channel', NEW.channel, 'account', NEW.account,
                'owner', NEW.owner, 'previous_owner', OLD.owner,
                'owner_reason', NEW.owner_reason, 'assigned_agent_id', NEW.assigned_agent_id,
                'contact_id', NEW.contact_id, 'changed_at', clock_timestamp()))
        FROM webhooks w WHERE w.active AND w.events ? ev
        RETURNING id
    )
    {DEFER}
    RETURN NULL;
END $$;
CREATE TRIGGER atiende_webhooks_owner_changed AFTER UPDATE OF owner ON conversations
    FOR EACH ROW WHEN (OLD.owner IS DISTINCT FROM NEW.owner)
    EXECUTE FUNCTION atiende_webhooks_owner_changed();
"""


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('admin','supervisor','agent')",
                           name=op.f("ck_api_keys_role_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index("uq_api_keys_active_name", "api_keys", ["name"], unique=True,
                    postgresql_where=sa.text("revoked_at IS NULL"))
    op.create_table(
        "webhooks",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", JSONB(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),  # fernet:… (encrypted at rest)
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("webhook_id", sa.UUID(), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("conversation_id", sa.UUID(), nullable=True),
        sa.Column("payload", JSONB(), nullable=False),
        # pending -> delivered | failed (replay puts it back to pending)
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True),
                  server_default=sa.text("clock_timestamp()"), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhooks.id"], ondelete="CASCADE",
                                name=op.f("fk_webhook_deliveries_webhook_id_webhooks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index("ix_webhook_deliveries_webhook", "webhook_deliveries",
                    ["webhook_id", "id"])
    op.execute(MESSAGES_TRIGGER)
    op.execute(CONVERSATIONS_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS atiende_webhooks_owner_changed ON conversations")
    op.execute("DROP FUNCTION IF EXISTS atiende_webhooks_owner_changed()")
    op.execute("DROP TRIGGER IF EXISTS atiende_webhooks_message_created ON messages")
    op.execute("DROP FUNCTION IF EXISTS atiende_webhooks_message_created()")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_index("uq_api_keys_active_name", table_name="api_keys")
    op.drop_table("api_keys")
