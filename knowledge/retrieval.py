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

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.embeddings import Embedder, Vector
from knowledge.store import vector_literal
from knowledge.synonyms import Synonyms
from knowledge.vectors import check_model_name, vector_type

# ts_rank_cd's weights for the D (body), C (tags), B (heading) and A (title) parts of
# a chunk's text (PostgreSQL's default is {0.1, 0.2, 0.4, 1.0}): a word of the body
# counts for more than by default, so a title word shared by every chunk of an
# article ("pago" in "Formas de pago") does not outweigh the passage that answers.
TEXT_WEIGHTS = "{0.4,0.4,0.6,1.0}"
# Small k: the first places of each list decide (tuned on the demo question set).
RRF_K = 10

# One statement, one round trip: the HNSW half (only vectors of the current model; an
# iterative scan in strict order keeps k results, nearest first, while a re-embed leaves
# rows of another model behind),
# the full-text half (the question's stemmed words OR-ed together: a customer rarely
# uses every word an article uses, and ts_rank_cd rewards the chunks that match more
# of them; the tsquery is built once, not per row; at most ``cap`` matching chunks are
# ranked, which bounds the cost on a big base),
# the question's own words when asked for (those the cached vocabulary lacks, "motos",
# are the unknown terms), and the chunks' fields.
_HYBRID_SQL = """
WITH words AS (
  SELECT lexeme FROM unnest(tsvector_to_array(to_tsvector('spanish', kb_fold(:text))))
    AS lexeme),
q AS (
  SELECT CAST(string_agg(quote_literal(lexeme), ' | ') AS tsquery) AS query FROM words
  WHERE NOT lexeme = ANY(CAST(:common AS text[]))),
v AS (
  SELECT id, {distance} AS distance FROM kb_chunks
  WHERE model = {model} {kind}
  ORDER BY {distance} LIMIT :k),
m AS (
  SELECT c.id, c.tsv FROM kb_chunks c, q
  WHERE q.query IS NOT NULL AND c.tsv @@ q.query {kind_c} LIMIT :cap),
t AS (
  SELECT m.id, ts_rank_cd('{weights}', m.tsv, q.query, 1) AS rank FROM m, q
  ORDER BY rank DESC, m.id LIMIT :k),
hits AS (
  SELECT id, distance, CAST(NULL AS real) AS rank FROM v
  UNION ALL SELECT id, NULL, rank FROM t)
SELECT c.id, c.source_kind, c.source_id, c.title, c.heading, c.role, c.text,
  h.distance, h.rank, NULL AS lexeme
FROM hits h JOIN kb_chunks c ON c.id = h.id
{unknown}
"""
_UNKNOWN_PART = """UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, lexeme
FROM unnest(tsvector_to_array(to_tsvector('spanish', kb_fold(:raw)))) AS lexeme
"""
_KIND = "AND source_kind = :kind"


def _distance(dimensions: int) -> str:
    """The model's fixed-dimension cast, as its partial HNSW index is built on it."""
    cast = vector_type(dimensions)
    return f"(embedding::{cast} <=> CAST(:q AS {cast}))"


def _model_literal(model: str) -> str:
    # literal, not a bind parameter: the planner must see the partial index's predicate
    return "'" + check_model_name(model).replace("'", "''") + "'"


def hybrid_sql(model: str, dimensions: int, *, kind: bool, unknown: bool) -> TextClause:
    """The one-round-trip hybrid statement for ``model``'s vectors (knowledge/vectors.py)."""
    return text(_HYBRID_SQL.format(
        distance=_distance(dimensions), model=_model_literal(model),
        kind=_KIND if kind else "", kind_c=_KIND.replace("source", "c.source") if kind else "",
        unknown=_UNKNOWN_PART if unknown else "", weights=TEXT_WEIGHTS,
    ))


def nearest_ids_sql(model: str, dimensions: int) -> TextClause:
    """The nearest chunks alone (``Retriever.nearest``: the bench's recall check, through
    the model's index or, for the exact answer, a sequential scan under the same filter)."""
    return text(
        f"SELECT id FROM kb_chunks WHERE model = {_model_literal(model)} "
        f"ORDER BY {_distance(dimensions)} LIMIT :k"
    )


_SETTINGS_SQL = text(
    "SELECT set_config('hnsw.ef_search', :ef, true), "
    "set_config('hnsw.iterative_scan', 'strict_order', true)"
)
# At most this many matching chunks are ranked (bounds the cost on a big base).
TEXT_MATCH_CAP = 100
_REVISION_SQL = text("SELECT revision FROM kb_state WHERE id = 1")
# Words in more than COMMON_SHARE of the chunks ("seguro", "poliza") say nothing
# about which chunk answers; they are left out of the full-text query.
COMMON_SHARE = 0.2
# Every lexeme of the knowledge base with the number of chunks that use it: read once
# per revision (the common words above, and the question words the base never uses).
_VOCABULARY_SQL = text(
    "SELECT word, ndoc, (SELECT count(*) FROM kb_chunks) AS chunks "
    "FROM ts_stat('SELECT tsv FROM kb_chunks')"
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
        ef_search: int = 40,
        lexical_weight: float = 1.0,
        rrf_k: int = RRF_K,
        synonyms: Synonyms | None = None,
    ) -> None:
        self._sessions = sessions
        self._embedder = embedder
        self._candidates = candidates
        # the index must look at least as far as the candidates asked for
        self._ef_search = max(ef_search, candidates)
        self._common: list[str] = []
        self._vocabulary: frozenset[str] = frozenset()
        self._common_revision = -1
        self._common_checked = 0.0
        self._lexical_weight = lexical_weight
        self._rrf_k = rrf_k
        self._synonyms = synonyms if synonyms is not None else Synonyms.empty()
        self._statements: dict[tuple[str, int, bool, bool], TextClause] = {}

    def _statement(self, dimensions: int, *, kind: bool, unknown: bool) -> TextClause:
        key = (self._embedder.name, dimensions, kind, unknown)
        if key not in self._statements:
            self._statements[key] = hybrid_sql(
                self._embedder.name, dimensions, kind=kind, unknown=unknown
            )
        return self._statements[key]

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
        params = {
            "q": vector_literal(vector), "k": self._candidates,
            "text": self._synonyms.expand(query[:2000]), "kind": kind, "cap": TEXT_MATCH_CAP,
            "raw": self._synonyms.canonical(query[:2000]),
        }
        async with self._sessions() as session, session.begin():
            await session.execute(_SETTINGS_SQL, {"ef": str(int(self._ef_search))})
            params["common"] = await self._common_terms(session)
            statement = self._statement(len(vector), kind=kind is not None, unknown=unknown)
            rows = (await session.execute(statement, params)).all()
        vector_rows = sorted((r for r in rows if r.distance is not None),
                             key=lambda r: (r.distance, r.id))
        text_rows = sorted((r for r in rows if r.rank is not None), key=lambda r: (-r.rank, r.id))
        unknown_terms = tuple(
            r.lexeme for r in rows if r.lexeme is not None and r.lexeme not in self._vocabulary
        )
        fused = fuse(
            [r.id for r in vector_rows], [r.id for r in text_rows],
            weights=(1.0, self._lexical_weight), k=self._rrf_k,
        )[:limit]
        details = {r.id: r for r in rows if r.id is not None}
        similarity = {r.id: 1.0 - float(r.distance) for r in vector_rows}
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

    async def nearest(self, vector: Vector, *, k: int = 10, exact: bool = False) -> list[int]:
        """Ids of the ``k`` chunks nearest to ``vector`` (current model only): through the
        HNSW index as ``search`` does, or exactly (sequential scan, same filter)."""
        async with self._sessions() as session, session.begin():
            await session.execute(_SETTINGS_SQL, {"ef": str(int(self._ef_search))})
            if exact:
                await session.execute(text("SET LOCAL enable_indexscan = off"))
                await session.execute(text("SET LOCAL enable_bitmapscan = off"))
            found = await session.scalars(
                nearest_ids_sql(self._embedder.name, len(vector)),
                {"q": vector_literal(vector), "k": k},
            )
            return list(found.all())

    async def _common_terms(self, session: AsyncSession) -> list[str]:
        """Lexemes too frequent to discriminate (and the vocabulary), recomputed when the
        revision changes (the revision is looked at most once a second)."""
        now = time.monotonic()
        if now - self._common_checked < 1.0:
            return self._common
        self._common_checked = now
        revision = int((await session.scalar(_REVISION_SQL)) or 0)
        if revision != self._common_revision:
            rows = (await session.execute(_VOCABULARY_SQL)).all()
            limit = max(3.0, COMMON_SHARE * (rows[0].chunks if rows else 0))
            self._common = sorted(r.word for r in rows if r.ndoc > limit)
            self._vocabulary = frozenset(r.word for r in rows)
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
