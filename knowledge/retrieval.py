"""Hybrid retrieval: pgvector HNSW (cosine) + Spanish full-text search, fused by rank.

The vector side finds paraphrases ("¿me cubren si choco?"), the full-text side
finds exact words (a product name, "deducible"), with Spanish stemming and
accent folding (``kb_fold`` = unaccent + lower). Reciprocal-rank fusion merges
the two lists; each hit keeps both raw scores so the caller can judge support.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.embeddings import Embedder, Vector
from knowledge.store import vector_literal
from knowledge.vectors import nearest_sql

# Small k: the first places of each list decide (tuned on the demo question set).
RRF_K = 10

# The vector query names the model and its dimension literally, so PostgreSQL walks
# that model's partial HNSW index (knowledge/vectors.py).
# Words of the question that appear nowhere in the knowledge base ("motos").
_UNKNOWN_SQL = text(
    "SELECT lexeme FROM unnest(tsvector_to_array(to_tsvector('spanish', kb_fold(:text)))) "
    "AS lexeme WHERE NOT EXISTS (SELECT 1 FROM kb_chunks "
    "WHERE tsv @@ to_tsquery('spanish', quote_literal(lexeme)))"
)
# The question's stemmed words OR-ed together: a customer rarely uses every word
# an article uses, and ts_rank_cd rewards the chunks that match more of them.
_TEXT_SQL = text(
    "WITH q AS (SELECT string_agg(quote_literal(lexeme), ' | ') AS query "
    "FROM unnest(tsvector_to_array(to_tsvector('spanish', kb_fold(:text)))) AS lexeme "
    "WHERE NOT lexeme = ANY(CAST(:common AS text[]))) "
    ", m AS (SELECT c.id, c.source_kind, c.source_id, c.title, c.heading, c.role, c.text, "
    "c.tsv, q.query FROM kb_chunks c, q WHERE q.query IS NOT NULL "
    "AND c.tsv @@ to_tsquery('spanish', q.query) "
    "AND (CAST(:kind AS text) IS NULL OR c.source_kind = :kind) LIMIT :cap) "
    "SELECT id, source_kind, source_id, title, heading, role, text, "
    "ts_rank_cd(tsv, to_tsquery('spanish', query), 1) AS rank FROM m "
    "WHERE ts_rank_cd(tsv, to_tsquery('spanish', query), 1) >= :min_rank "
    "ORDER BY rank DESC LIMIT :k"
)
# Full-text hits below this rank are left out of the fusion (0: keep all; 0.05 was
# measured worse on the demo question set).
MIN_TEXT_RANK = 0.0
# At most this many matching chunks are ranked (bounds the cost on a big base).
TEXT_MATCH_CAP = 250
_REVISION_SQL = text("SELECT revision FROM kb_state WHERE id = 1")
# Words in more than COMMON_SHARE of the chunks ("seguro", "poliza") say nothing
# about which chunk answers; they are left out of the full-text query.
COMMON_SHARE = 0.2
_COMMON_SQL = text(
    "SELECT word FROM ts_stat('SELECT tsv FROM kb_chunks') "
    "WHERE ndoc > GREATEST(3, :share * (SELECT count(*) FROM kb_chunks))"
)


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk with its fused score and both raw scores."""

    chunk_id: int
    source_kind: str  # article | product
    source_id: str  # article id or product sku
    title: str
    heading: str
    role: str  # passage | question
    text: str
    score: float  # reciprocal-rank fusion
    similarity: float  # cosine similarity of the embeddings (0 when not a vector hit)
    text_rank: float  # ts_rank_cd (0 when the words did not match)
    vector_rank: int | None
    lexical_rank: int | None


@dataclass(frozen=True, slots=True)
class Retrieval:
    query: str
    hits: tuple[Hit, ...]
    elapsed_ms: float
    unknown_terms: tuple[str, ...] = ()  # question words the knowledge base never uses

    def sources(self) -> tuple[str, ...]:
        """Distinct source ids, most relevant first."""
        return tuple(dict.fromkeys(h.source_id for h in self.hits))


class Retriever:
    """Finds the passages of the knowledge base that answer a question."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        embedder: Embedder,
        *,
        candidates: int = 30,
        ef_search: int = 100,
        lexical_weight: float = 1.0,
        rrf_k: int = RRF_K,
    ) -> None:
        self._sessions = sessions
        self._embedder = embedder
        self._candidates = candidates
        self._ef_search = ef_search
        self._common: list[str] = []
        self._common_revision = -1
        self._common_checked = 0.0
        self._lexical_weight = lexical_weight
        self._rrf_k = rrf_k

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    async def search(self, query: str, *, limit: int = 5, kind: str | None = None) -> Retrieval:
        """Top ``limit`` chunks for ``query`` (embedding computed here)."""
        vector = (await self._embedder.embed([query]))[0]
        return await self.search_vector(query, vector, limit=limit, kind=kind)

    async def search_vector(
        self, query: str, vector: Vector, *, limit: int = 5, kind: str | None = None,
        unknown: bool = False,
    ) -> Retrieval:
        """Top ``limit`` chunks (only ``kind`` = article|product when given)."""
        started = time.perf_counter()
        async with self._sessions() as session, session.begin():
            await session.execute(text(f"SET LOCAL hnsw.ef_search = {int(self._ef_search)}"))
            if kind is not None:
                await session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            vector_rows = [
                r for r in (
                    await session.execute(
                        nearest_sql(self._embedder.name, len(vector), by_kind=kind is not None),
                        {"q": vector_literal(vector), "k": self._candidates, "kind": kind},
                    )
                ).all()
                if r.model == self._embedder.name
            ]
            common = await self._common_terms(session)
            text_rows = (
                await session.execute(
                    _TEXT_SQL,
                    {"text": query[:2000], "k": self._candidates, "common": common, "kind": kind,
                     "cap": TEXT_MATCH_CAP, "min_rank": MIN_TEXT_RANK},
                )
            ).all()
            fused = fuse(
                [r.id for r in vector_rows], [r.id for r in text_rows],
                weights=(1.0, self._lexical_weight), k=self._rrf_k,
            )[:limit]
            details = {r.id: r for r in text_rows} | {r.id: r for r in vector_rows}
            unknown_terms: tuple[str, ...] = ()
            if unknown:
                unknown_terms = tuple(
                    r.lexeme
                    for r in (await session.execute(_UNKNOWN_SQL, {"text": query[:2000]})).all()
                )
        similarity = {r.id: float(r.similarity) for r in vector_rows}
        rank = {r.id: float(r.rank) for r in text_rows}
        vector_pos = {r.id: i for i, r in enumerate(vector_rows)}
        text_pos = {r.id: i for i, r in enumerate(text_rows)}
        hits = tuple(
            Hit(
                chunk_id=chunk_id, source_kind=details[chunk_id].source_kind,
                source_id=details[chunk_id].source_id, title=details[chunk_id].title,
                heading=details[chunk_id].heading, role=details[chunk_id].role,
                text=details[chunk_id].text, score=score,
                similarity=similarity.get(chunk_id, 0.0), text_rank=rank.get(chunk_id, 0.0),
                vector_rank=vector_pos.get(chunk_id), lexical_rank=text_pos.get(chunk_id),
            )
            for chunk_id, score in fused
            if chunk_id in details
        )
        return Retrieval(query, hits, (time.perf_counter() - started) * 1000, unknown_terms)


    async def _common_terms(self, session: AsyncSession) -> list[str]:
        """Lexemes too frequent to discriminate, recomputed when the revision changes
        (the revision is looked at most once a second)."""
        now = time.monotonic()
        if now - self._common_checked < 1.0:
            return self._common
        self._common_checked = now
        revision = int((await session.scalar(_REVISION_SQL)) or 0)
        if revision != self._common_revision:
            rows = (await session.execute(_COMMON_SQL, {"share": COMMON_SHARE})).all()
            self._common = sorted(r.word for r in rows)
            self._common_revision = revision
        return self._common


def fuse(
    *rankings: Sequence[int], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """(Weighted) reciprocal-rank fusion of several ranked id lists, best first."""
    scores: dict[int, float] = {}
    for index, ranking in enumerate(rankings):
        weight = weights[index] if weights is not None else 1.0
        for position, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + weight / (k + position + 1)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
