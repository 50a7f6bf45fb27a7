"""whatsapp numbers (neonize sessions and their health)

Revision ID: channels_0001
Revises: 0001_core
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "channels_0001"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("channels",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "whatsapp_numbers",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("account", sa.String(length=20), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=True),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("jid", sa.String(length=100), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("state", sa.String(length=24), server_default="stopped", nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("owner_node", sa.String(length=100), nullable=True),
        sa.Column("qr", sa.Text(), nullable=True),
        sa.Column("qr_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pairing_phone", sa.String(length=20), nullable=True),
        sa.Column("pairing_code", sa.String(length=20), nullable=True),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("restarts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whatsapp_numbers")),
        sa.UniqueConstraint("account", name=op.f("uq_whatsapp_numbers_account")),
    )


def downgrade() -> None:
    op.drop_table("whatsapp_numbers")
