"""knowledge base: articles, products, versions, chunks, intent examples

Revision ID: knowledge_0001
Revises: 0001_core
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

revision: str = "knowledge_0001"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = ("knowledge",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # unaccent() is only STABLE; an IMMUTABLE wrapper lets indexes and generated
    # columns use it (the dictionary is fixed by name).
    op.execute(
        "CREATE OR REPLACE FUNCTION kb_fold(t text) RETURNS text "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT "
        "AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, lower(t)) $$"
    )
    now = sa.text("now()")
    op.create_table(
        "kb_articles",
        sa.Column("id", sa.String(120), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.String(80)), server_default="{}", nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("questions", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('product','policy','faq')", name=op.f("ck_kb_articles_kind_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_articles")),
    )
    op.create_table(
        "kb_products",
        sa.Column("sku", sa.String(80), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("price", sa.Numeric(14, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(120), server_default="", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("price >= 0", name=op.f("ck_kb_products_price_not_negative")),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_kb_products")),
    )
    op.create_table(
        "kb_versions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("edited_by", sa.String(200), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.CheckConstraint("entity IN ('article','product')", name=op.f("ck_kb_versions_entity_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_versions")),
    )
    op.create_index("ix_kb_versions_entity_key", "kb_versions", ["entity", "key", "version"], unique=True)
    op.create_table(
        "kb_chunks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("source_id", sa.String(120), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("heading", sa.String(300), server_default="", nullable=False),
        sa.Column("role", sa.String(16), server_default="passage", nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("tsv", postgresql.TSVECTOR(), nullable=False),
        sa.Column("embedding", Vector(512), nullable=True),
        sa.Column("model", sa.String(120), nullable=False),
        sa.CheckConstraint("source_kind IN ('article','product')", name=op.f("ck_kb_chunks_source_kind_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_chunks")),
    )
    op.create_index("ix_kb_chunks_source", "kb_chunks", ["source_kind", "source_id", "ordinal"], unique=True)
    op.create_index("ix_kb_chunks_tsv", "kb_chunks", ["tsv"], postgresql_using="gin")
    op.create_index(
        "ix_kb_chunks_embedding", "kb_chunks", ["embedding"], postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 128},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )
    op.create_table(
        "kb_intent_examples",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("intent", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("embedding", Vector(512), nullable=True),
        sa.Column("model", sa.String(120), server_default="", nullable=False),
        sa.Column("created_by", sa.String(200), server_default="seed", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_intent_examples")),
    )
    op.create_index("ix_kb_intent_examples_text", "kb_intent_examples", ["intent", "text"], unique=True)
    op.create_table(
        "kb_state",
        sa.Column("id", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("revision", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_kb_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_state")),
    )
    op.execute("INSERT INTO kb_state (id, revision) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("kb_state")
    op.drop_index("ix_kb_intent_examples_text", table_name="kb_intent_examples")
    op.drop_table("kb_intent_examples")
    op.drop_index("ix_kb_chunks_embedding", table_name="kb_chunks")
    op.drop_index("ix_kb_chunks_tsv", table_name="kb_chunks")
    op.drop_index("ix_kb_chunks_source", table_name="kb_chunks")
    op.drop_table("kb_chunks")
    op.drop_index("ix_kb_versions_entity_key", table_name="kb_versions")
    op.drop_table("kb_versions")
    op.drop_table("kb_products")
    op.drop_table("kb_articles")
    op.execute("DROP FUNCTION IF EXISTS kb_fold(text)")
