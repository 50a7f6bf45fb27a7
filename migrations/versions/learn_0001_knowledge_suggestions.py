"""Knowledge suggestions: questions handed over for lack of an answer, grouped, with the
agents' replies; which resolved handoffs were already looked at.

Items and harvested tickets go with their conversation (ON DELETE CASCADE): erasing a
customer erases what was learnt from them, not the articles an admin approved.

Revision ID: learn_0001
Revises: knowledge_0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

revision: str = "learn_0001"
down_revision: str | Sequence[str] | None = "knowledge_0004"
branch_labels: str | Sequence[str] | None = None
# conversations (0001_core) and handoff_tickets (handoff_0002) are referenced
depends_on: str | Sequence[str] | None = ("0001_core", "handoff_0002")


def upgrade() -> None:
    op.create_table(
        "kb_suggestions",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("model", sa.String(120), nullable=False),
        sa.Column("question_mean", Vector(), nullable=True),
        sa.Column("reply_mean", Vector(), nullable=True),
        sa.Column("items", sa.Integer(), server_default="0", nullable=False),
        sa.Column("customers", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("draft_title", sa.Text(), nullable=True),
        sa.Column("draft_body", sa.Text(), nullable=True),
        sa.Column("draft_model", sa.String(200), nullable=True),
        sa.Column("draft_items", sa.Integer(), server_default="0", nullable=False),
        sa.Column("article_id", sa.String(120), nullable=True),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_title", sa.Text(), nullable=True),
        sa.Column("approved_body", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('pending','approved','dismissed')",
                           name=op.f("ck_kb_suggestions_status_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_suggestions")),
    )
    op.create_index("ix_kb_suggestions_status", "kb_suggestions", ["status", "last_asked_at"])
    op.create_table(
        "kb_suggestion_items",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("suggestion_id", sa.UUID(), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("ticket_id", sa.UUID(), nullable=True),
        sa.Column("reply_message_id", sa.UUID(), nullable=True),
        sa.Column("conversation_id", sa.UUID(), nullable=False),
        sa.Column("contact_id", sa.UUID(), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("replies", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("masked", postgresql.JSONB(astext_type=sa.Text()), server_default="{}",
                  nullable=False),
        sa.Column("source_ids", postgresql.ARRAY(sa.UUID()), nullable=False),
        sa.Column("question_vec", Vector(), nullable=False),
        sa.Column("reply_vec", Vector(), nullable=False),
        sa.Column("model", sa.String(120), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("marked_by", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.CheckConstraint("origin IN ('handoff','marked')",
                           name=op.f("ck_kb_suggestion_items_origin_valid")),
        sa.ForeignKeyConstraint(
            ["suggestion_id"], ["kb_suggestions.id"], ondelete="CASCADE",
            name=op.f("fk_kb_suggestion_items_suggestion_id_kb_suggestions")),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], ondelete="CASCADE",
            name=op.f("fk_kb_suggestion_items_conversation_id_conversations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_suggestion_items")),
    )
    op.create_index("ix_kb_suggestion_items_suggestion_id", "kb_suggestion_items",
                    ["suggestion_id"])
    op.create_index("uq_kb_suggestion_items_ticket", "kb_suggestion_items", ["ticket_id"],
                    unique=True, postgresql_where=sa.text("ticket_id IS NOT NULL"))
    op.create_index("uq_kb_suggestion_items_reply", "kb_suggestion_items",
                    ["reply_message_id"], unique=True,
                    postgresql_where=sa.text("reply_message_id IS NOT NULL"))
    op.create_table(
        "kb_harvested_tickets",
        sa.Column("ticket_id", sa.UUID(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=True),
        sa.Column("harvested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["handoff_tickets.id"], ondelete="CASCADE",
            name=op.f("fk_kb_harvested_tickets_ticket_id_handoff_tickets")),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_kb_harvested_tickets")),
    )
    # the harvester's query: resolved no_answer handoffs not yet looked at
    op.create_index("ix_handoff_tickets_no_answer_closed", "handoff_tickets", ["closed_at"],
                    postgresql_where=sa.text("reason = 'no_answer' AND outcome = 'resolved'"))


def downgrade() -> None:
    op.drop_index("ix_handoff_tickets_no_answer_closed", table_name="handoff_tickets")
    op.drop_table("kb_harvested_tickets")
    op.drop_table("kb_suggestion_items")
    op.drop_table("kb_suggestions")
