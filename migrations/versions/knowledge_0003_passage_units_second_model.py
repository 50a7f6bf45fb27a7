"""Retrieval on passage units with two models and BM25.

``kb_chunk_vectors`` holds each chunk's vector by a second embedding model (e5-small
beside USE), with a partial HNSW index per model; ``kb_lexicon`` the document
frequency of every full-text lexeme; ``kb_chunks.tokens`` a chunk's length in words;
``kb_state`` the corpus figures BM25 needs and the chunking rules the chunks were cut
with (articles are re-cut into passage units at the next start).

Revision ID: knowledge_0003
Revises: knowledge_0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision: str = "knowledge_0003"
down_revision: str | Sequence[str] | None = "knowledge_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# knowledge.vectors.index_sql("e5-small-multilingual-q4", 384, table="kb_chunk_vectors")
E5_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_kb_chunk_vectors_vec_066c4e34d93c ON kb_chunk_vectors USING hnsw "
    "((embedding::vector(384)) vector_cosine_ops) WITH (m = 16, ef_construction = 128) "
    "WHERE model = 'e5-small-multilingual-q4'"
)


def upgrade() -> None:
    op.create_table(
        "kb_chunk_vectors",
        sa.Column("chunk_id", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(120), nullable=False),
        sa.Column("embedding", Vector(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chunk_id"], ["kb_chunks.id"], ondelete="CASCADE",
            name=op.f("fk_kb_chunk_vectors_chunk_id_kb_chunks"),
        ),
        sa.PrimaryKeyConstraint("chunk_id", "model", name=op.f("pk_kb_chunk_vectors")),
    )
    op.execute(E5_INDEX)
    op.create_table(
        "kb_lexicon",
        sa.Column("lexeme", sa.Text(), nullable=False),
        sa.Column("ndoc", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("lexeme", name=op.f("pk_kb_lexicon")),
    )
    op.add_column("kb_chunks", sa.Column("tokens", sa.Integer(), server_default="0",
                                         nullable=False))
    op.execute(
        "UPDATE kb_chunks SET tokens = coalesce((SELECT sum(coalesce(array_length("
        "positions, 1), 1)) FROM unnest(tsv)), 0)"
    )
    for name, kind, default in (
        ("chunks", sa.Integer(), "0"), ("avg_tokens", sa.Float(), "0"),
        ("lexicon_revision", sa.BigInteger(), "-1"), ("chunking", sa.Integer(), "0"),
    ):
        op.add_column("kb_state", sa.Column(name, kind, server_default=default, nullable=False))


def downgrade() -> None:
    for name in ("chunking", "lexicon_revision", "avg_tokens", "chunks"):
        op.drop_column("kb_state", name)
    op.drop_column("kb_chunks", "tokens")
    op.drop_table("kb_lexicon")
    op.drop_table("kb_chunk_vectors")
