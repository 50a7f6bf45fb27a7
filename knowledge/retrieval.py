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
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from knowledge.embeddings import Embedder, Vector
from knowledge.store import vector_literal
from knowledge.synonyms import Synonyms, plain_words
from knowledge.vectors import check_model_name, vector_type

# ts_rank_cd's weights for the D (body), C (tags), B (heading) and A (title) parts of
# a chunk's text (PostgreSQL's default is {0.1, 0.2, 0.4, 1.0}): a word of the body
# counts for more than by default, so a title word shared by every chunk of an
# article ("pago" in "Formas de pago") does not outweigh the passage that answers.
TEXT_WEIGHTS = "{0.4,0.4,0.6,1.0}"
# Small k: the first places of each list decide (tuned on the demo question set).
RRF_K = 10

# One statement, one round trip, run as a prepared statement straight on the driver:
# the HNSW half (only vectors of the current model, through its partial index; an
# iterative scan in strict order keeps k results, nearest first, while a re-embed
# leaves rows of another model behind),
# the full-text half (the question's stemmed words OR-ed together: a customer rarely
# uses every word an article uses, and ts_rank_cd rewards the chunks that match more
# of them; the tsquery is built once, not per row; at most ``cap`` matching chunks are
# ranked, which bounds the cost on a big base),
# the weighted reciprocal-rank fusion of the two lists (in SQL: only the best ``lim``
# chunks come back, with their fields), and the question's own words when asked for
# (those the cached vocabulary lacks, "motos", are the unknown terms).
_HYBRID_SQL = """
WITH words AS (
  SELECT lexeme FROM unnest(tsvector_to_array(to_tsvector('spanish', kb_fold(%(text)s))))
    AS lexeme),
q AS (
  SELECT CAST(string_agg(quote_literal(lexeme), ' | ') AS tsquery) AS query FROM words
  WHERE NOT lexeme = ANY(CAST(%(common)s AS text[]))),
v0 AS (
  SELECT id, {distance} AS distance FROM kb_chunks
  WHERE model = {model} {kind}
  ORDER BY {distance} LIMIT CAST(%(k)s AS int)),
v AS (
  SELECT id, distance, row_number() OVER (ORDER BY distance, id) AS pos FROM v0),
m AS (
  SELECT c.id, c.tsv FROM kb_chunks c, q
  WHERE q.query IS NOT NULL AND c.tsv @@ q.query {kind_c} LIMIT CAST(%(cap)s AS int)),
t0 AS (
  SELECT m.id, ts_rank_cd('{weights}', m.tsv, q.query, 1) AS rank FROM m, q
  ORDER BY rank DESC, m.id LIMIT CAST(%(k)s AS int)),
t AS (
  SELECT id, rank, row_number() OVER (ORDER BY rank DESC, id) AS pos FROM t0),
f AS (
  SELECT coalesce(v.id, t.id) AS id, v.distance, t.rank, v.pos AS vpos, t.pos AS tpos,
    coalesce(1.0::float8 / (CAST(%(rrf)s AS float8) + v.pos), 0)
    + coalesce(CAST(%(lw)s AS float8) / (CAST(%(rrf)s AS float8) + t.pos), 0) AS score
  FROM v FULL JOIN t ON v.id = t.id
  ORDER BY score DESC, id LIMIT CAST(%(lim)s AS int))
SELECT c.id, c.source_kind, c.source_id, c.title, c.heading, c.role, c.text,
  f.distance, f.rank, f.vpos, f.tpos, f.score, NULL AS lexeme
FROM f JOIN kb_chunks c ON c.id = f.id
{unknown}
"""
_UNKNOWN_PART = """UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, lexeme
FROM unnest(tsvector_to_array(to_tsvector('spanish', kb_fold(%(raw)s)))) AS lexeme
"""
_KIND = "AND source_kind = %(kind)s"


def _distance(dimensions: int, placeholder: str = ":q") -> str:
    """The model's fixed-dimension cast, as its partial HNSW index is built on it."""
    cast = vector_type(dimensions)
    return f"(embedding::{cast} <=> CAST({placeholder} AS {cast}))"


def _model_literal(model: str) -> str:
    # literal, not a bind parameter: the planner must see the partial index's predicate
    return "'" + check_model_name(model).replace("'", "''") + "'"


def hybrid_sql(model: str, dimensions: int, *, kind: bool, unknown: bool) -> str:
    """The one-round-trip hybrid statement for ``model``'s vectors (knowledge/vectors.py),
    with the driver's ``%(name)s`` placeholders."""
    return _HYBRID_SQL.format(
        distance=_distance(dimensions, "%(q)s"), model=_model_literal(model),
        kind=_KIND if kind else "", kind_c=_KIND.replace("source", "c.source") if kind else "",
        unknown=_UNKNOWN_PART if unknown else "", weights=TEXT_WEIGHTS,
    )


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
# The same for the whole database session (autocommit): set once per pooled connection
# (``_SESSION_KEY`` in the connection's info says with which ef_search).
_SESSION_SETTINGS_SQL = (
    "SELECT set_config('hnsw.ef_search', %(ef)s, false), "
    "set_config('hnsw.iterative_scan', 'strict_order', false)"
)
_SESSION_KEY = "atiende_hnsw_ef_search"
# At most this many matching chunks are ranked (bounds the cost on a big base).
TEXT_MATCH_CAP = 100
_REVISION_SQL = "SELECT revision FROM kb_state WHERE id = 1"
# Words in more than COMMON_SHARE of the chunks ("seguro", "poliza") say nothing
# about which chunk answers; they are left out of the full-text query. On a big base
# a word in more than COMMON_MAX_CHUNKS chunks is left out too: only TEXT_MATCH_CAP
# matches are ranked, and with such a word in the query those would be an arbitrary
# sample of its matches (crowding out the chunks that hold the rare words), while
# reading its posting list is most of the full-text half's cost.
COMMON_SHARE = 0.2
COMMON_MAX_CHUNKS = 1000
# Every lexeme of the knowledge base with the number of chunks that use it: read once
# per revision (the common words above, and the question words the base never uses).
_VOCABULARY_SQL = (
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
    """Finds the passages of the knowledge base that answer a question.

    The search runs on the driver's connection (psycopg) under the session factory's
    engine, in autocommit, as one prepared statement: one round trip per question,
    no ORM work, the fusion done by the database.
    """

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
        engine = sessions.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            raise TypeError("the retriever needs a session factory bound to an AsyncEngine")
        self._engine = engine
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
        self._statements: dict[tuple[str, int, bool, bool], str] = {}

    def _statement(self, dimensions: int, *, kind: bool, unknown: bool) -> str:
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
        vector = await self.query_vector(query)
        return await self.search_vector(query, vector, limit=limit, kind=kind)

    async def query_vector(self, query: str, vector: Vector | None = None) -> Vector:
        """The vector to search with: the question as the knowledge base would word it
        (synonyms replaced, fillers dropped: "oye me bajaron la troca" → "me bajaron la
        auto"), embedded; ``vector`` (the raw question's) when that changes nothing."""
        canonical = self._synonyms.canonical(query[:2000])
        if vector is not None and (not canonical or canonical == plain_words(query[:2000])):
            return vector
        return (await self._embedder.embed([canonical or query]))[0]

    async def search_vector(
        self, query: str, vector: Vector, *, limit: int = 5, kind: str | None = None,
        unknown: bool = False,
    ) -> Retrieval:
        """Top ``limit`` chunks (only ``kind`` = article|product when given)."""
        started = time.perf_counter()
        params: dict[str, Any] = {
            "q": vector_literal(vector), "k": self._candidates,
            "text": self._synonyms.expand(query[:2000]), "cap": TEXT_MATCH_CAP,
            "rrf": self._rrf_k, "lw": self._lexical_weight, "lim": max(1, limit),
        }
        if kind is not None:
            params["kind"] = kind
        if unknown:
            params["raw"] = self._synonyms.canonical(query[:2000])
        statement = self._statement(len(vector), kind=kind is not None, unknown=unknown)
        async with self._engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            if raw.info.get(_SESSION_KEY) != self._ef_search:
                await driver.execute(_SESSION_SETTINGS_SQL, {"ef": str(int(self._ef_search))})
                raw.info[_SESSION_KEY] = self._ef_search
            params["common"] = await self._common_terms(driver)
            cursor = await driver.execute(statement, params, prepare=True)
            rows: list[tuple[Any, ...]] = await cursor.fetchall()
        hits = tuple(
            Hit(
                chunk_id=r[0], source_kind=r[1], source_id=r[2], title=r[3], heading=r[4],
                role=r[5], text=r[6], score=float(r[11]),
                similarity=1.0 - float(r[7]) if r[7] is not None else 0.0,
                text_rank=float(r[8]) if r[8] is not None else 0.0,
                vector_rank=r[9] - 1 if r[9] is not None else None,
                lexical_rank=r[10] - 1 if r[10] is not None else None,
            )
            for r in sorted((r for r in rows if r[0] is not None), key=lambda r: (-r[11], r[0]))
        )
        vocabulary = self._vocabulary
        unknown_terms = tuple(
            r[12] for r in rows if r[12] is not None and r[12] not in vocabulary
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

    async def _common_terms(self, driver: Any) -> list[str]:
        """Lexemes too frequent to discriminate (and the vocabulary), recomputed when the
        revision changes (the revision is looked at most once a second)."""
        now = time.monotonic()
        if now - self._common_checked < 1.0:
            return self._common
        self._common_checked = now
        found = await (await driver.execute(_REVISION_SQL)).fetchone()
        revision = int(found[0]) if found is not None and found[0] is not None else 0
        if revision != self._common_revision:
            rows = await (await driver.execute(_VOCABULARY_SQL)).fetchall()
            limit = common_limit(rows[0][2] if rows else 0)
            self._common = sorted(r[0] for r in rows if r[1] > limit)
            self._vocabulary = frozenset(r[0] for r in rows)
            self._common_revision = revision
        return self._common


def common_limit(chunks: int) -> float:
    """A word in more chunks than this is left out of the full-text query."""
    return max(3.0, min(COMMON_SHARE * chunks, float(COMMON_MAX_CHUNKS)))


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
