"""What of an article or product is indexed: its chunk rows and how they are embedded.

Chunks are derived data: every write of an item deletes its rows in ``kb_chunks``
and inserts them again with their vectors and the full-text ``tsv`` (title weighs
most, then heading, then the extra words such as tags, sku and category).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from knowledge.chunking import passage_units
from knowledge.documents import ArticleDoc, ProductDoc
from knowledge.embeddings import Vector
from knowledge.models import Chunk
from knowledge.text import words

__all__ = [
    "ChunkRow",
    "article_chunks",
    "delete_chunks",
    "embedding_input",
    "product_chunks",
    "replace_chunks",
    "token_count",
    "unit_heading",
    "vector_literal",
]


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """One row of ``kb_chunks`` before it has a vector."""

    ordinal: int
    title: str
    heading: str
    text: str
    extra: str
    role: str = "passage"


_INSERT_CHUNK = text(
    "INSERT INTO kb_chunks (source_kind, source_id, ordinal, title, heading, role, text, model, "
    "embedding, tokens, tsv) VALUES (:kind, :sid, :ordinal, CAST(:title AS text), "
    "CAST(:heading AS text), :role, CAST(:text AS text), :model, CAST(:embedding AS vector), "
    ":tokens, "
    "setweight(to_tsvector('spanish', kb_fold(CAST(:title AS text))), 'A') || "
    "setweight(to_tsvector('spanish', kb_fold(CAST(:heading AS text))), 'B') || "
    "setweight(to_tsvector('spanish', kb_fold(CAST(:extra AS text))), 'C') || "
    "to_tsvector('spanish', kb_fold(CAST(:text AS text))))"
)

_FLOAT = "{:.7g}"


def vector_literal(vector: Vector) -> str:
    return "[" + ",".join(map(_FLOAT.format, vector)) + "]"


def article_chunks(doc: ArticleDoc) -> list[ChunkRow]:
    """The article's passage units (paragraph, list item, table row under its heading),
    then the example questions its admins wrote."""
    extra = " ".join(doc.tags)
    rows = [
        ChunkRow(d.ordinal, doc.title, d.heading, d.text, extra)
        for d in passage_units(doc.body)
    ]
    # The customer questions the article answers: matched question-to-question,
    # which is where sentence encoders are strongest.
    rows += [
        ChunkRow(len(rows) + i, doc.title, "", question, extra, "question")
        for i, question in enumerate(doc.questions)
    ]
    return rows


def product_chunks(doc: ProductDoc) -> list[ChunkRow]:
    body = doc.description or doc.name
    return [ChunkRow(0, doc.name, doc.category, body, f"{doc.sku} {doc.category}")]


def embedding_input(row: ChunkRow) -> str:
    """What is embedded: a question as written; a passage under its title and heading."""
    if row.role == "question":
        return row.text
    return f"{unit_heading(row.title, row.heading)}: {row.text}"


def unit_heading(title: str, heading: str) -> str:
    """The heading path of a passage, starting with its article's title."""
    if not heading:
        return title
    return heading if heading.startswith(title) else f"{title} › {heading}"


def token_count(row: ChunkRow) -> int:
    """A chunk's length in words, as BM25 counts it (title, heading and text)."""
    return len(words(f"{row.title} {row.heading} {row.extra} {row.text}"))


async def delete_chunks(session: AsyncSession, kind: str, source_id: str) -> None:
    await session.execute(
        delete(Chunk).where(Chunk.source_kind == kind, Chunk.source_id == source_id)
    )


async def replace_chunks(
    session: AsyncSession, kind: str, source_id: str, rows: Sequence[ChunkRow],
    vectors: Sequence[Vector], *, model: str,
) -> None:
    """The item's chunks become ``rows`` with ``vectors`` (made by ``model``)."""
    await delete_chunks(session, kind, source_id)
    if not rows:
        return
    await session.execute(
        _INSERT_CHUNK,
        [
            {"kind": kind, "sid": source_id, "ordinal": r.ordinal, "title": r.title,
             "heading": r.heading, "text": r.text, "extra": r.extra, "role": r.role,
             "model": model, "embedding": vector_literal(v), "tokens": token_count(r)}
            for r, v in zip(rows, vectors, strict=True)
        ],
    )
