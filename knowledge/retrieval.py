"""Hybrid retrieval: two embedding models (pgvector HNSW) and BM25 over Spanish full text.

One prepared statement per question gathers the candidate pool: the nearest chunks by
the primary model (USE), the nearest by the second model (e5, when configured), and the
chunks whose stemmed, accent-folded words match (at most ``TEXT_MATCH_CAP``); for every
candidate it returns both cosines and its BM25 score (document frequencies from
``kb_lexicon``, rebuilt with each revision). ``knowledge.ranking`` turns the pool into
ranked sources. The question's own words that the base never uses come back too
("motos" in a base without motorbikes): the caller treats them as a sign of a question
the base cannot answer.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from knowledge.answer_types import question_form
from knowledge.embeddings import Embedder, Vector
from knowledge.indexing import vector_literal
from knowledge.ranking import (
    Candidate,
    QuestionContext,
    RankedSource,
    Ranker,
    shipped_ranker,
)
from knowledge.synonyms import Synonyms, load_common_words, plain_words
from knowledge.text import words as text_words
from knowledge.vectors import check_model_name, vector_type

# At most this many full-text matches are scored (bounds the cost on a big base).
TEXT_MATCH_CAP = 100
# Words in more than COMMON_SHARE of the chunks ("pago", "servicio") say little about
# which chunk answers; on a big base a word in more than COMMON_MAX_CHUNKS chunks is
# left out too (only TEXT_MATCH_CAP matches are scored, and reading its posting list
# would be most of the full-text half's cost).
COMMON_SHARE = 0.2
COMMON_MAX_CHUNKS = 1000
# An example question an admin wrote for an article that is among the nearest, with
# none of that article's passages, brings its first passages into the pool (they may all
# rank lower than the question itself: "¿el perro de mi hijo queda cubierto?" written
# for the home policy).
ASKED_PASSAGES = 12
# ... when the question is that close to it (a paraphrase, not a shared word or two)
ASKED_MIN = 0.8
BM25_K1 = 1.2
BM25_B = 0.75

_CANDIDATES_SQL = """
WITH qwords AS (
  SELECT DISTINCT lexeme FROM unnest(tsvector_to_array(to_tsvector('spanish',
    kb_fold(%(text)s)))) AS lexeme),
words AS (
  SELECT w.lexeme, ln(1 + (s.chunks - l.ndoc + 0.5) / (l.ndoc + 0.5)) AS idf
  FROM qwords w JOIN kb_lexicon l ON l.lexeme = w.lexeme
  JOIN kb_state s ON s.id = 1
  WHERE l.ndoc <= greatest(3, least(s.chunks * {share}, {max_chunks}))),
q AS (
  SELECT CAST(string_agg(quote_literal(lexeme), ' | ') AS tsquery) AS query FROM words),
v AS (
  SELECT id FROM kb_chunks WHERE model = {model} {kind}
  ORDER BY {distance} LIMIT {k}),
{second_list}
m AS (
  SELECT c.id FROM kb_chunks c, q
  WHERE q.query IS NOT NULL AND c.tsv @@ q.query {kind_c} LIMIT {cap}),
near AS (SELECT id FROM v UNION SELECT id FROM m {second_union}),
asked AS (
  SELECT c.source_kind, c.source_id FROM near JOIN kb_chunks c ON c.id = near.id
  WHERE c.role = 'question' AND c.model = {model} AND 1 - {distance_c} >= {asked_min}
  EXCEPT SELECT c.source_kind, c.source_id FROM near JOIN kb_chunks c ON c.id = near.id
  WHERE c.role <> 'question'),
pool AS (
  SELECT id FROM near
  UNION SELECT c.id FROM asked a JOIN kb_chunks c
    ON c.source_kind = a.source_kind AND c.source_id = a.source_id
  WHERE c.role <> 'question' AND c.model = {model} AND c.ordinal < {asked_passages})
SELECT c.id, c.source_kind, c.source_id, c.title, c.heading, c.role, c.text,
  1 - {distance_c} AS use_cos, {second_cos} AS e5_cos,
  coalesce((
    SELECT sum(w.idf * ({k1} + 1) * x.tf / (x.tf + {k1} * (1 - {b} + {b} * c.tokens
      / greatest(s.avg_tokens, 1))))
    FROM (SELECT u.lexeme, coalesce(array_length(u.positions, 1), 1) AS tf
          FROM unnest(c.tsv) u) x
    JOIN words w ON w.lexeme = x.lexeme, kb_state s WHERE s.id = 1), 0)
    / greatest((SELECT sum(idf) FROM words) * ({k1} + 1), 1e-9) AS bm25,
  NULL AS lexeme, NULL AS known
FROM pool JOIN kb_chunks c ON c.id = pool.id
{second_join}
{unknown}
"""
_SECOND_LIST = """e AS (
  SELECT chunk_id AS id FROM kb_chunk_vectors WHERE model = {model2}
  ORDER BY {distance2} LIMIT {k}),"""
_SECOND_JOIN = "LEFT JOIN kb_chunk_vectors x ON x.chunk_id = c.id AND x.model = {model2}"
_UNKNOWN_PART = """UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, lexeme,
  EXISTS (SELECT 1 FROM kb_lexicon l WHERE l.lexeme = w.lexeme)
  OR lexeme = ANY(tsvector_to_array(to_tsvector('spanish', kb_fold(%(common)s))))
FROM (SELECT DISTINCT lexeme FROM unnest(tsvector_to_array(to_tsvector('spanish',
  kb_fold(%(raw)s)))) AS lexeme) w
"""
_KIND = "AND source_kind = %(kind)s"


def _distance(dimensions: int, placeholder: str, column: str = "embedding") -> str:
    """The model's fixed-dimension cast, as its partial HNSW index is built on it."""
    cast = vector_type(dimensions)
    return f"({column}::{cast} <=> CAST({placeholder} AS {cast}))"


def _model_literal(model: str) -> str:
    # literal, not a bind parameter: the planner must see the partial index's predicate
    return "'" + check_model_name(model).replace("'", "''") + "'"


def candidates_sql(model: str, dimensions: int, second: tuple[str, int] | None, *,
                   kind: bool, unknown: bool, candidates: int) -> str:
    """The one-round-trip candidate statement (driver ``%(name)s`` placeholders).

    The list sizes are literals, not parameters: a prepared statement's generic plan
    then knows it reads ``candidates`` rows from each index (with a parameter it
    assumes thousands and joins the whole table), so PostgreSQL can reuse one plan
    instead of planning every question again."""
    parts: dict[str, str] = {
        "k": str(int(candidates)), "cap": str(int(TEXT_MATCH_CAP)),
        "model": _model_literal(model), "distance": _distance(dimensions, "%(q)s"),
        "distance_c": _distance(dimensions, "%(q)s", "c.embedding"),
        "kind": _KIND if kind else "",
        "kind_c": _KIND.replace("source", "c.source") if kind else "",
        "unknown": _UNKNOWN_PART if unknown else "",
        "share": str(COMMON_SHARE), "max_chunks": str(COMMON_MAX_CHUNKS),
        "k1": str(BM25_K1), "b": str(BM25_B), "asked_passages": str(ASKED_PASSAGES),
        "asked_min": str(ASKED_MIN),
        "second_list": "", "second_union": "", "second_join": "", "second_cos": "NULL",
    }
    if second is not None:
        model2, dims2 = _model_literal(second[0]), second[1]
        # the second model's own nearest list only without a kind filter (its table
        # has no kind); its cosine is computed for every candidate either way
        if not kind:
            parts["second_list"] = _SECOND_LIST.format(
                model2=model2, distance2=_distance(dims2, "%(q2)s"), k=parts["k"])
            parts["second_union"] = "UNION SELECT id FROM e"
        parts["second_join"] = _SECOND_JOIN.format(model2=model2)
        parts["second_cos"] = f"1 - {_distance(dims2, '%(q2)s', 'x.embedding')}"
    return _CANDIDATES_SQL.format(**parts)


def nearest_ids_sql(model: str, dimensions: int) -> TextClause:
    """The nearest chunks alone (``Retriever.nearest``: the bench's recall check, through
    the model's index or, for the exact answer, a sequential scan under the same filter)."""
    return text(
        f"SELECT id FROM kb_chunks WHERE model = {_model_literal(model)} "
        f"ORDER BY {_distance(dimensions, ':q')} LIMIT :k"
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


class QueryEmbedder(Protocol):
    """A model that embeds questions differently from passages (e5's ``query:``)."""

    async def embed_queries(self, texts: Sequence[str]) -> list[Vector]: ...


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved passage with its fused score and raw signals."""

    chunk_id: int
    source_kind: str  # article | product
    source_id: str  # article id or product sku
    title: str
    heading: str
    role: str  # passage | question
    text: str
    score: float  # fused z-score in the question's candidate pool
    similarity: float  # cosine similarity under the primary model
    text_rank: float  # BM25 (0 when no word matched)


@dataclass(frozen=True, slots=True)
class Retrieval:
    query: str
    hits: tuple[Hit, ...]  # passages of the ranked sources, best source first
    elapsed_ms: float
    unknown_terms: tuple[str, ...] = ()  # question words the knowledge base never uses
    ranked: tuple[RankedSource, ...] = field(default=())

    def sources(self) -> tuple[str, ...]:
        """Distinct source ids, most relevant first."""
        return tuple(s.source_id for s in self.ranked)


class Retriever:
    """Finds the passages of the knowledge base that answer a question.

    The search runs on the driver's connection (psycopg) under the session factory's
    engine, in autocommit, as one prepared statement: one round trip per question.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        embedder: Embedder,
        *,
        second: Embedder | None = None,
        candidates: int = 30,
        ef_search: int = 40,
        synonyms: Synonyms | None = None,
        ranker: Ranker | None = None,
    ) -> None:
        self._sessions = sessions
        engine = sessions.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            raise TypeError("the retriever needs a session factory bound to an AsyncEngine")
        self._engine = engine
        self._embedder = embedder
        self._second = second
        self._candidates = candidates
        # the index must look at least as far as the candidates asked for
        self._ef_search = max(ef_search, candidates)
        self._synonyms = synonyms if synonyms is not None else Synonyms.empty()
        self._common = load_common_words()
        self._ranker = ranker or shipped_ranker()
        self._statements: dict[tuple[Any, ...], str] = {}

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    @property
    def second(self) -> Embedder | None:
        return self._second

    def _statement(self, dimensions: int, second_dims: int | None, *, kind: bool,
                   unknown: bool) -> str:
        second = (self._second.name, second_dims) if self._second and second_dims else None
        key = (self._embedder.name, dimensions, second, kind, unknown)
        if key not in self._statements:
            self._statements[key] = candidates_sql(
                self._embedder.name, dimensions, second, kind=kind, unknown=unknown,
                candidates=self._candidates)
        return self._statements[key]

    async def search(self, query: str, *, limit: int = 5, kind: str | None = None) -> Retrieval:
        """Ranked sources for ``query`` (embeddings computed here)."""
        vector = await self.query_vector(query)
        return await self.search_vector(query, vector, limit=limit, kind=kind)

    async def query_vector(self, query: str, vector: Vector | None = None) -> Vector:
        """The primary model's vector of the question as the knowledge base would word it
        (synonyms replaced, fillers dropped: "oye me bajaron la troca" → "me bajaron la
        auto"); ``vector`` (the raw question's) when that changes nothing."""
        canonical = self._synonyms.canonical(query[:2000])
        if vector is not None and (not canonical or canonical == plain_words(query[:2000])):
            return vector
        return (await self._embedder.embed([canonical or query]))[0]

    async def second_vector(self, query: str) -> Vector | None:
        """The second model's vector of the question (``None`` without a second model)."""
        second = self._second
        if second is None:
            return None
        embed_queries = getattr(second, "embed_queries", None)
        if embed_queries is not None:
            return list((await embed_queries([query[:2000]]))[0])
        return (await second.embed([query[:2000]]))[0]

    async def search_vector(
        self, query: str, vector: Vector, *, limit: int = 5, kind: str | None = None,
        unknown: bool = False, second_vector: Vector | None = None, catalog_hint: float = 0.0,
        english: bool = False, second: bool = True,
    ) -> Retrieval:
        """Ranked sources (only ``kind`` = article|product when given); ``hits`` holds
        up to ``limit`` passages of the best sources, best first; ``second=False`` ranks
        by the first model and full text alone (the second model's vector not computed)."""
        started = time.perf_counter()
        pool, unknown_terms, words = await self.pool(
            query, vector, kind=kind, unknown=unknown, second_vector=second_vector,
            second=second)
        context = QuestionContext(catalog_hint, len(unknown_terms) / words if words else 0.0,
                                  english, question_form(query))
        ranked = self._ranker.rank(pool, context=context)
        best = heapq.nlargest(  # as a stable sort on the fused score would keep them
            max(1, limit),
            ((p, fused) for source in ranked
             for p, fused in zip(source.passages, source.fused, strict=True)),
            key=lambda pair: pair[1])
        hits = tuple(
            Hit(p.chunk_id, p.source_kind, p.source_id, p.title, p.heading, p.role, p.text,
                fused, p.use, p.bm25)
            for p, fused in best)
        return Retrieval(query, hits, (time.perf_counter() - started) * 1000, unknown_terms,
                         tuple(ranked))

    async def pool(
        self, query: str, vector: Vector, *, kind: str | None = None, unknown: bool = False,
        second_vector: Vector | None = None, second: bool = True,
    ) -> tuple[list[Candidate], tuple[str, ...], int]:
        """The candidate passages with their raw signals, the question's words the base
        never uses, and how many words the question has (with ``unknown``)."""
        if second and second_vector is None and self._second is not None:
            second_vector = await self.second_vector(query)
        rows = await self._fetch(query, vector, second_vector, kind=kind, unknown=unknown)
        pool = [
            Candidate(r[0], r[1], r[2], r[3], r[4], r[5], r[6], float(r[7]),
                      float(r[8]) if r[8] is not None else None, float(r[9]))
            for r in rows if r[0] is not None
        ]
        words = [(r[10], bool(r[11])) for r in rows if r[0] is None and r[10] is not None]
        return pool, tuple(w for w, known in words if not known), len(words)

    @property
    def has_second(self) -> bool:
        return self._second is not None

    async def search_both(self, query: str, vector: Vector, *, limit: int = 5,
                          unknown: bool = False, catalog_hint: float = 0.0,
                          english: bool = False, second_model: bool = True) -> Retrieval:
        """``search_vector`` with the question's vectors of both models computed at once
        (the second model's in a thread while the primary one is searched for);
        ``second_model=False``: the first model's alone."""
        if not second_model:
            canonical = await self.query_vector(query, vector)
            return await self.search_vector(query, canonical, limit=limit, unknown=unknown,
                                            catalog_hint=catalog_hint, english=english,
                                            second=False)
        second = asyncio.create_task(self.second_vector(query)) if self._second else None
        canonical = await self.query_vector(query, vector)
        second_vector = await second if second is not None else None
        return await self.search_vector(query, canonical, limit=limit, unknown=unknown,
                                        second_vector=second_vector, catalog_hint=catalog_hint,
                                        english=english)

    async def _fetch(self, query: str, vector: Vector, second_vector: Vector | None, *,
                     kind: str | None, unknown: bool) -> list[tuple[Any, ...]]:
        params: dict[str, Any] = {
            "q": vector_literal(vector), "text": self._synonyms.expand(query[:2000]),
        }
        if second_vector is not None:
            params["q2"] = vector_literal(second_vector)
        if kind is not None:
            params["kind"] = kind
        if unknown:
            # the question's words, synonyms resolved; those that say nothing about a topic
            # ("usted", "ir", "kiero") count as words, never as unknown ones
            params["raw"] = self._synonyms.canonical(query[:2000]) or query[:2000]
            params["common"] = " ".join(
                w for w in text_words(params["raw"]) if w in self._common)
        statement = self._statement(
            len(vector), len(second_vector) if second_vector is not None else None,
            kind=kind is not None, unknown=unknown)
        async with self._engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            if raw.info.get(_SESSION_KEY) != self._ef_search:
                await driver.execute(_SESSION_SETTINGS_SQL, {"ef": str(int(self._ef_search))})
                raw.info[_SESSION_KEY] = self._ef_search
            # The planner prices a small base's sequential scan below the vector index,
            # but casting and comparing every stored vector costs far more than it
            # thinks (35 ms against 1 ms at 5,000 passages): within this statement's own
            # transaction the index is the only way; one round trip (pipeline).
            async with driver.pipeline():
                await driver.execute("BEGIN")
                await driver.execute("SET LOCAL enable_seqscan = off")
                cursor = await driver.execute(statement, params, prepare=True)
                await driver.execute("COMMIT")
            return list(await cursor.fetchall())

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
