"""The inbox workspace: contact e-mail and notes, read markers (unread counts), label
colours, business hours editable in the database, and the indexes the conversation list
needs at 10,000 conversations (keyset paging by last message; trigram search over names,
phones and message text).

Revision ID: inbox_0001
Revises: prod_0001
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "inbox_0001"
down_revision: str | Sequence[str] | None = "prod_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "handoff_0002"


def upgrade() -> None:
    op.add_column("contacts", sa.Column("email", sa.String(length=254), nullable=True))
    op.add_column("contacts", sa.Column("notes", sa.Text(), nullable=True))
    op.create_table(
        "conversation_reads",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("conversation_id", sa.UUID(), nullable=False),
        sa.Column("last_read_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE",
                                name="fk_conversation_reads_conversation_id_conversations"),
        sa.PrimaryKeyConstraint("user_id", "conversation_id", name="pk_conversation_reads"),
    )
    op.create_table(
        "label_colors",
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.Column("color", sa.String(length=7), nullable=False),
        sa.PrimaryKeyConstraint("label", name="pk_label_colors"),
    )
    op.create_table(
        "business_schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hours", sa.Text(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("holidays", JSONB(), server_default="[]", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("updated_by", sa.String(length=254), nullable=True),
        sa.CheckConstraint("id = 1", name="ck_business_schedule_single_row"),
        sa.PrimaryKeyConstraint("id", name="pk_business_schedule"),
    )
    op.execute(
        "CREATE INDEX ix_conversations_last_message ON conversations "
        "(last_message_at DESC NULLS LAST, id DESC)"
    )
    op.execute(
        "CREATE INDEX ix_conversations_owner_last_message ON conversations "
        "(owner, last_message_at DESC NULLS LAST, id DESC)"
    )
    op.execute("CREATE INDEX ix_contacts_name_trgm ON contacts USING gin (name gin_trgm_ops)")
    op.execute(
        "CREATE INDEX ix_contacts_phone_trgm ON contacts USING gin (phone_e164 gin_trgm_ops)"
    )
    op.execute("CREATE INDEX ix_messages_text_trgm ON messages USING gin (text gin_trgm_ops)")


def downgrade() -> None:
    for index in ("ix_messages_text_trgm", "ix_contacts_phone_trgm", "ix_contacts_name_trgm",
                  "ix_conversations_owner_last_message", "ix_conversations_last_message"):
        op.execute(f"DROP INDEX IF EXISTS {index}")
    op.drop_table("business_schedule")
    op.drop_table("label_colors")
    op.drop_table("conversation_reads")
    op.drop_column("contacts", "notes")
    op.drop_column("contacts", "email")
