"""Vectors of any embedding model in one column, each model with its own HNSW index.

The ``embedding`` columns are pgvector ``vector`` without a fixed dimension, so a
provider's model (768, 1024, 1536… dimensions) fits next to the default 512-dim
USE model. pgvector indexes only fixed dimensions, so every model gets a
*partial expression* index::

    CREATE INDEX … USING hnsw ((embedding::vector(512)) vector_cosine_ops)
        WHERE model = 'usem3-multilingual-v3'

and the vector query names the same expression and the model *literally* (a bind
parameter would hide the predicate from the planner). Models above 2000
dimensions (pgvector's limit for ``vector`` in HNSW) are indexed as ``halfvec``
(up to 4000); above that the search is exact (a scan).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

VECTOR_MAX_INDEXED = 2000
HALFVEC_MAX_INDEXED = 4000
_SAFE_MODEL = re.compile(r"^[A-Za-z0-9._:/@+=-]{1,120}$")
_INDEX_PREFIX = "ix_kb_chunks_vec_"
CHUNKS = "kb_chunks"
SECOND = "kb_chunk_vectors"  # vectors of the second model, per chunk


def check_model_name(name: str) -> str:
    """Model names are written into SQL literally: only a safe alphabet is allowed."""
    if not _SAFE_MODEL.match(name):
        raise ValueError(
            f"embedding model name {name!r} has characters outside [A-Za-z0-9._:/@+=-]"
        )
    return name


def _literal(name: str) -> str:
    return "'" + check_model_name(name).replace("'", "''") + "'"


def vector_type(dimensions: int) -> str:
    """The fixed-dimension type a model's vectors are cast to (and indexed as)."""
    dims = int(dimensions)
    if dims < 1:
        raise ValueError("an embedding needs at least one dimension")
    return f"halfvec({dims})" if dims > VECTOR_MAX_INDEXED else f"vector({dims})"


def index_name(model: str, table: str = CHUNKS) -> str:
    digest = hashlib.blake2b(check_model_name(model).encode(), digest_size=6).hexdigest()
    return f"ix_{table}_vec_{digest}"


def index_sql(model: str, dimensions: int, table: str = CHUNKS) -> str | None:
    """The DDL of ``model``'s HNSW index (``None`` when too many dimensions to index)."""
    if dimensions > HALFVEC_MAX_INDEXED:
        return None
    kind = vector_type(dimensions)
    ops = "halfvec_cosine_ops" if kind.startswith("halfvec") else "vector_cosine_ops"
    return (
        f"CREATE INDEX IF NOT EXISTS {index_name(model, table)} ON {table} USING hnsw "
        f"((embedding::{kind}) {ops}) WITH (m = 16, ef_construction = 128) "
        f"WHERE model = {_literal(model)}"
    )


@lru_cache(maxsize=16)
def nearest_sql(model: str, dimensions: int, *, by_kind: bool) -> TextClause:
    """Nearest chunks of ``model`` by cosine distance (binds ``:q``, ``:k``, ``:kind``)."""
    cast = vector_type(dimensions)
    distance = f"(embedding::{cast} <=> CAST(:q AS {cast}))"
    where = f"model = {_literal(model)}" + (" AND source_kind = :kind" if by_kind else "")
    return text(
        "SELECT id, model, source_kind, source_id, title, heading, role, text, "
        f"1 - {distance} AS similarity FROM kb_chunks WHERE {where} "
        f"ORDER BY {distance} LIMIT :k"
    )


async def ensure_index(
    session: AsyncSession, model: str, dimensions: int, table: str = CHUNKS
) -> bool:
    """Create ``model``'s index on ``table`` when missing; ``True`` when it exists after."""
    if table not in (CHUNKS, SECOND):
        raise ValueError(f"no vector index on {table}")
    ddl = index_sql(model, dimensions, table)
    if ddl is None:
        return False
    # one creator at a time (two processes starting together)
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('kb_vector_index'))"))
    exists = await session.scalar(
        text("SELECT 1 FROM pg_indexes WHERE tablename = :table AND indexname = :name"),
        {"table": table, "name": index_name(model, table)},
    )
    if not exists:
        await session.execute(text(ddl))
    return True


async def drop_other_indexes(session: AsyncSession, keep: str) -> list[str]:
    """Drop the vector indexes of models no chunk uses any more (after a model change)."""
    names = (
        await session.scalars(
            text("SELECT indexname FROM pg_indexes WHERE tablename = 'kb_chunks' "
                 "AND indexname LIKE :prefix"),
            {"prefix": _INDEX_PREFIX + "%"},
        )
    ).all()
    dropped = [n for n in names if n != index_name(keep)]
    for name in dropped:
        await session.execute(text(f'DROP INDEX IF EXISTS "{name}"'))
    return dropped
