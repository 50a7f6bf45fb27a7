"""Intent examples keep their second model's vector too.

The intent classifier averages both models' nearest examples; the second model's vectors
of the examples were computed again at every start (several seconds of CPU the first
customer waited for). They are now stored beside the first model's, with the model name,
and filled when missing or stale.

Revision ID: knowledge_0004
Revises: knowledge_0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision: str = "knowledge_0004"
down_revision: str | Sequence[str] | None = "knowledge_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("kb_intent_examples", sa.Column("second_embedding", Vector(), nullable=True))
    op.add_column("kb_intent_examples", sa.Column(
        "second_model", sa.String(120), server_default="", nullable=False))


def downgrade() -> None:
    op.drop_column("kb_intent_examples", "second_model")
    op.drop_column("kb_intent_examples", "second_embedding")
