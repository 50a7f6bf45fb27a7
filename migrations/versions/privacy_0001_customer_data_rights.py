"""Customer data rights: erasure log, opt-outs kept as salted hashes, retention state

- ``privacy_salt``: one random salt for this installation (never leaves the database);
  ``privacy_phone_hash(key)`` = hex SHA-256 of salt || contact key (``+52…``,
  ``sim:+52…``, ``lid:…``).
- ``privacy_optouts``: the hashes of erased customers who had opted out. A contact
  created (or given a number) whose key hashes to one is opted out from the start
  (trigger below), so campaign and outbox checks, which read ``contacts.opted_out``,
  keep honouring the opt-out after the person is gone.
- ``privacy_erasures``: who erased whom and when (contact id and key hashes only), what
  was erased, and the media objects and memory still to delete (an erasure is resumable).
- ``privacy_retention``: how far the retention job got, per kind of data.
- ``contacts.erased_at``, ``conversations.erased_at``: the anonymised rows analytics keep.
- Indexes the erasure and retention need on tables that grow (built CONCURRENTLY, so a
  running Atiende keeps writing while they build).

Revision ID: privacy_0001
Revises: prod_0001
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision: str = "privacy_0001"
down_revision: str | Sequence[str] | None = "prod_0001"
branch_labels: str | Sequence[str] | None = None
# the tables an erasure goes through (bot/privacy/holdings.py) exist before it
depends_on: str | Sequence[str] | None = (
    "ops_0002", "handoff_0002", "seq_0001",  # seq_0001 follows campaigns_0001
)

HASH_FUNCTION = """
CREATE FUNCTION privacy_phone_hash(key text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to(s.salt || key, 'UTF8')), 'hex')
    FROM privacy_salt s WHERE s.id = 1
$$;
"""

OPT_OUT_TRIGGER = """
CREATE FUNCTION privacy_keep_opt_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.phone_e164 IS NOT NULL AND NOT NEW.opted_out AND EXISTS (
        SELECT 1 FROM privacy_optouts WHERE phone_hash = privacy_phone_hash(NEW.phone_e164)
    ) THEN
        NEW.opted_out := true;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER privacy_keep_opt_out BEFORE INSERT OR UPDATE OF phone_e164 ON contacts
    FOR EACH ROW EXECUTE FUNCTION privacy_keep_opt_out();
"""

# (name, table, columns[, where]) built concurrently
INDEXES = (
    ("ix_messages_created_at", "messages", "created_at", None),
    ("ix_audit_log_target", "audit_log", "target", "target IS NOT NULL"),
    ("ix_llm_calls_conversation_id", "llm_calls", "conversation_id",
     "conversation_id IS NOT NULL"),
    ("ix_transcriptions_conversation_id", "transcriptions", "conversation_id", None),
    ("ix_webhook_deliveries_conversation_id", "webhook_deliveries", "conversation_id",
     "conversation_id IS NOT NULL"),
    ("ix_campaign_recipients_contact_id", "campaign_recipients", "contact_id",
     "contact_id IS NOT NULL"),
    ("ix_campaign_recipients_phone", "campaign_recipients", "phone_e164", None),
    ("ix_contact_list_entries_phone", "contact_list_entries", "phone_e164", None),
    ("ix_conversation_notes_created_at", "conversation_notes", "created_at", None),
)


def upgrade() -> None:
    op.create_table(
        "privacy_salt",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("salt", sa.Text(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_privacy_salt_single_row"),
    )
    # gen_random_uuid() draws from the server's strong random source: 244 random bits
    op.execute(
        "INSERT INTO privacy_salt (id, salt) VALUES "
        "(1, replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))"
    )
    op.execute(HASH_FUNCTION)
    op.create_table(
        "privacy_optouts",
        sa.Column("phone_hash", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
    )
    op.create_table(
        "privacy_erasures",
        sa.Column("id", sa.UUID(), primary_key=True),
        sa.Column("contact_id", sa.UUID(), nullable=False),
        sa.Column("key_hashes", ARRAY(sa.String(64)), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.UUID(), nullable=True),
        sa.Column("actor_email", sa.String(254), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True),
                  server_default=sa.text("clock_timestamp()"), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("counts", JSONB(), nullable=False, server_default="{}"),
        sa.Column("conversation_ids", ARRAY(sa.UUID()), nullable=False,
                  server_default="{}"),
        sa.Column("media_keys", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("pending_keys", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("objects_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('objects', 'settling', 'done')",
                           name="ck_privacy_erasures_state"),
    )
    op.create_index("ix_privacy_erasures_contact", "privacy_erasures", ["contact_id"])
    op.create_index("ix_privacy_erasures_hashes", "privacy_erasures", ["key_hashes"],
                    postgresql_using="gin")
    op.create_index("ix_privacy_erasures_unfinished", "privacy_erasures", ["requested_at"],
                    postgresql_where=sa.text("state <> 'done'"))
    op.create_table(
        "privacy_retention",
        sa.Column("what", sa.String(32), primary_key=True),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purged", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("contacts", sa.Column("erased_at", sa.DateTime(timezone=True)))
    op.add_column("conversations", sa.Column("erased_at", sa.DateTime(timezone=True)))
    op.execute(OPT_OUT_TRIGGER)
    with op.get_context().autocommit_block():
        for name, table, column, where in INDEXES:
            clause = f" WHERE {where}" if where else ""
            op.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({column}){clause}"
            )


def downgrade() -> None:
    for name, _, _, _ in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("DROP TRIGGER IF EXISTS privacy_keep_opt_out ON contacts")
    op.execute("DROP FUNCTION IF EXISTS privacy_keep_opt_out()")
    op.drop_column("conversations", "erased_at")
    op.drop_column("contacts", "erased_at")
    op.drop_table("privacy_retention")
    op.drop_table("privacy_erasures")
    op.drop_table("privacy_optouts")
    op.execute("DROP FUNCTION IF EXISTS privacy_phone_hash(text)")
    op.drop_table("privacy_salt")
