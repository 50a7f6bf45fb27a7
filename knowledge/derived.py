"""Data derived from the articles and products: BM25's lexicon, the second embedding
model's vectors, and articles cut again into passages when the chunking rules change.

None of it is versioned (it is rebuilt from the items); retrieval works, a little less
well, while it catches up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.embeddings import Embedder, Vector
from knowledge.indexing import ChunkRow, article_chunks, embedding_input, replace_chunks
from knowledge.kinds import ARTICLES
from knowledge.models import Article, ChunkVector, State
from knowledge.vectors import SECOND, ensure_index

Embed = Callable[[Sequence[ChunkRow]], Awaitable[list[Vector]]]

# Bump when passage_units/article_chunks cut articles differently: stored articles are
# then cut again at the next start (``KnowledgeStore.maintain``).
CHUNKING_VERSION = 2

_MISSING_SECOND = text(
    "SELECT c.id, c.title, c.heading, c.text, c.role FROM kb_chunks c "
    "WHERE NOT EXISTS (SELECT 1 FROM kb_chunk_vectors v WHERE v.chunk_id = c.id "
    "AND v.model = :model) ORDER BY c.id LIMIT :limit"
)
_LEXICON_SQL = (
    "SELECT pg_advisory_xact_lock(hashtext('kb_lexicon'))",
    "DELETE FROM kb_lexicon",
    "INSERT INTO kb_lexicon (lexeme, ndoc) SELECT word, ndoc FROM ts_stat("
    "'SELECT tsv FROM kb_chunks')",
    "UPDATE kb_state SET chunks = (SELECT count(*) FROM kb_chunks), "
    "avg_tokens = coalesce((SELECT avg(tokens) FROM kb_chunks), 0), "
    "lexicon_revision = :revision WHERE id = 1",
)


async def refresh_lexicon(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Rebuild BM25's document frequencies when the revision moved since the last build
    (one builder at a time; a concurrent one finds it done)."""
    async with sessions.begin() as session:
        state = (await session.execute(text(
            "SELECT revision, lexicon_revision FROM kb_state WHERE id = 1 FOR UPDATE"
        ))).first()
        if state is None or state.revision == state.lexicon_revision:
            return False
        for statement in _LEXICON_SQL:
            await session.execute(text(statement), {"revision": state.revision})
    return True


class DerivedData:
    """Keeps the derived data of one knowledge base up to date (see the module)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], embedder: Embedder,
                 second: Embedder | None) -> None:
        self._sessions = sessions
        self._embedder = embedder
        self._second = second
        self._indexed: set[tuple[str, int]] = set()

    async def fill_second_vectors(self, *, batch: int = 32) -> int:
        """Vectors of the second model for chunks that lack one; returns how many."""
        second = self._second
        if second is None:
            return 0
        done = 0
        while True:
            async with self._sessions() as session:
                rows = (await session.execute(_MISSING_SECOND, {
                    "model": second.name, "limit": batch})).all()
            if not rows:
                return done
            vectors = await second.embed([
                embedding_input(ChunkRow(0, r.title, r.heading, r.text, "", r.role))
                for r in rows
            ])
            async with self._sessions.begin() as session:
                if (second.name, -len(vectors[0])) not in self._indexed:
                    await ensure_index(session, second.name, len(vectors[0]), SECOND)
                    self._indexed.add((second.name, -len(vectors[0])))
                await session.execute(
                    insert(ChunkVector)
                    .values([{"chunk_id": r.id, "model": second.name, "embedding": v}
                             for r, v in zip(rows, vectors, strict=True)])
                    .on_conflict_do_nothing()
                )
            done += len(rows)

    async def recut_if_needed(self, embed: Embed) -> int:
        """Articles are cut into passages again when the chunking rules changed since
        they were saved (no new version: only derived data changes)."""
        async with self._sessions() as session:
            state = await session.get(State, 1)
            if state is None or state.chunking >= CHUNKING_VERSION:
                return 0
            rows = (await session.scalars(
                select(Article).where(Article.deleted_at.is_(None)).order_by(Article.id)
            )).all()
            docs = [ARTICLES.from_data(ARTICLES.row_data(r)) for r in rows]
        for doc in docs:
            chunks = article_chunks(doc)
            vectors = await embed(chunks)
            async with self._sessions.begin() as session:
                await replace_chunks(session, "article", doc.id, chunks, vectors,
                                     model=self._embedder.name)
        async with self._sessions.begin() as session:
            await session.execute(update(State).where(State.id == 1).values(
                chunking=CHUNKING_VERSION, revision=State.revision + 1, updated_at=func.now()))
        return len(docs)
