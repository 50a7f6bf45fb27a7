"""The knowledge-base service: save, import, delete, restore, list, re-embed.

Every write runs in one transaction that also writes a version row (who, when)
and bumps the revision in ``kb_state``. Chunks and embeddings are rebuilt for
the record that changed; embeddings are computed before the transaction opens.
Articles and products share one write path (``knowledge.versioned``), each
described by its kind (``knowledge.kinds``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.derived import DerivedData, refresh_lexicon
from knowledge.documents import ArticleDoc, ProductDoc
from knowledge.embeddings import Embedder, Vector
from knowledge.errors import EntryNotFound, KnowledgeError
from knowledge.importing import FileResult, ImportReport, ParsedFile, check_duplicates, parse_file
from knowledge.indexing import (
    ChunkRow,
    article_chunks,
    embedding_input,
    product_chunks,
    vector_literal,
)
from knowledge.kinds import ARTICLES, PRODUCTS, ArticleView, ProductView
from knowledge.models import (
    Article,
    Chunk,
    EmbeddingStaging,
    Product,
    State,
    Version,
)
from knowledge.vectors import drop_other_indexes, ensure_index
from knowledge.versioned import Doc, ItemKind, Row, View

# Names callers import from here; most are defined by the modules above.
__all__ = [
    "ArticleView",
    "FileResult",
    "ImportReport",
    "KnowledgeStore",
    "ProductView",
    "VersionView",
    "article_chunks",
    "embedding_input",
    "product_chunks",
    "vector_literal",
]


@dataclass(frozen=True, slots=True)
class VersionView:
    """One saved state of an article or product, newest first in ``versions``."""

    entity: str
    key: str
    version: int
    action: str
    data: dict[str, Any]
    edited_by: str
    edited_at: datetime


_SWAP_STAGED = text(
    "UPDATE kb_chunks c SET embedding = s.embedding, model = s.model "
    "FROM kb_embedding_staging s WHERE s.chunk_id = c.id AND s.model = :model"
)


class KnowledgeStore:
    """Articles and products with versions, chunks and embeddings.

    ``second`` is an optional second embedding model whose vectors retrieval fuses with
    the primary ones (``kb_chunk_vectors``): they are filled after every write and by
    ``maintain`` at startup, so a write never waits on a slower model to be visible.
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], embedder: Embedder,
        second: Embedder | None = None,
    ) -> None:
        self._sessions = sessions
        self._embedder = embedder
        self._second = second
        self._indexed: set[tuple[str, int]] = set()
        self._derived = DerivedData(sessions, embedder, second)

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    @property
    def second(self) -> Embedder | None:
        return self._second

    # -- reading ---------------------------------------------------------------------

    async def revision(self) -> int:
        async with self._sessions() as session:
            value = await session.scalar(select(State.revision).where(State.id == 1))
        return int(value or 0)

    async def is_empty(self) -> bool:
        async with self._sessions() as session:
            articles = await session.scalar(select(func.count()).select_from(Article))
            products = await session.scalar(select(func.count()).select_from(Product))
        return not articles and not products

    async def get_article(self, article_id: str) -> ArticleView:
        return await self._get(ARTICLES, article_id)

    async def get_product(self, sku: str) -> ProductView:
        return await self._get(PRODUCTS, sku)

    async def list_articles(
        self, *, query: str = "", include_deleted: bool = False, limit: int = 200, offset: int = 0
    ) -> list[ArticleView]:
        return await self._list(ARTICLES, query, include_deleted, limit, offset)

    async def list_products(
        self, *, query: str = "", include_deleted: bool = False, limit: int = 500, offset: int = 0
    ) -> list[ProductView]:
        return await self._list(PRODUCTS, query, include_deleted, limit, offset)

    async def products_by_sku(self, skus: Sequence[str]) -> dict[str, ProductView]:
        if not skus:
            return {}
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Product).where(Product.sku.in_(skus), Product.deleted_at.is_(None))
                )
            ).all()
        return {r.sku: PRODUCTS.view(r) for r in rows}

    async def passages(self, source_kind: str, source_id: str) -> list[tuple[str, str]]:
        """(heading, text) of every body passage of an article or product, in order."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Chunk.heading, Chunk.text)
                    .where(Chunk.source_kind == source_kind, Chunk.source_id == source_id,
                           Chunk.role == "passage")
                    .order_by(Chunk.ordinal)
                )
            ).all()
        return [(r.heading, r.text) for r in rows]

    async def versions(self, entity: str, key: str) -> list[VersionView]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Version)
                    .where(Version.entity == entity, Version.key == key)
                    .order_by(Version.version.desc())
                )
            ).all()
        if not rows:
            raise EntryNotFound(f"{entity} {key!r} has no history")
        return [
            VersionView(r.entity, r.key, r.version, r.action, r.data, r.edited_by, r.edited_at)
            for r in rows
        ]

    # -- writing ---------------------------------------------------------------------

    async def save_article(self, doc: ArticleDoc, *, editor: str) -> ArticleView | None:
        """Create or update an article; ``None`` when nothing changed."""
        return await self._save(ARTICLES, doc, editor=editor)

    async def save_product(self, doc: ProductDoc, *, editor: str) -> ProductView | None:
        """Create or update a product; ``None`` when nothing changed."""
        return await self._save(PRODUCTS, doc, editor=editor)

    async def article_vectors(self, doc: ArticleDoc) -> list[Vector]:
        """The vectors of an article's chunks, computed before a caller's transaction
        (``write_article_in``)."""
        return await self._embed(ARTICLES.chunks(doc))

    async def write_article_in(
        self, session: AsyncSession, doc: ArticleDoc, vectors: list[Vector], *, editor: str
    ) -> ArticleView | None:
        """Create or update an article inside the caller's transaction (with its version
        row and the revision bump); the caller runs ``after_write`` once committed."""
        saved = await ARTICLES.write(session, doc, vectors, model=self._embedder.name,
                                     editor=editor)
        if saved is not None:
            await _bump(session)
        return saved

    async def delete_article(self, article_id: str, *, editor: str) -> ArticleView:
        return await self._delete(ARTICLES, article_id, editor=editor)

    async def delete_product(self, sku: str, *, editor: str) -> ProductView:
        return await self._delete(PRODUCTS, sku, editor=editor)

    async def restore(self, entity: str, key: str, version: int, *, editor: str) -> None:
        """Make an old version current again (also undeletes); saved as a new version."""
        async with self._sessions() as session:
            data = await session.scalar(
                select(Version.data).where(
                    Version.entity == entity, Version.key == key, Version.version == version
                )
            )
        if data is None:
            raise EntryNotFound(f"{entity} {key!r} has no version {version}")
        if entity == "article":
            await self._restore(ARTICLES, data, editor=editor)
        else:
            await self._restore(PRODUCTS, data, editor=editor)

    async def import_files(
        self,
        files: Sequence[tuple[str, bytes]],
        *,
        editor: str,
        replace: bool = False,
        on_file: Callable[[FileResult], None] | None = None,
    ) -> ImportReport:
        """Import Markdown and CSV files, each one whole or not at all."""
        parsed = check_duplicates([parse_file(name, data) for name, data in files])
        results: list[FileResult] = []
        for item in parsed:
            result = await self._import_one(item, editor=editor)
            results.append(result)
            if on_file is not None:
                on_file(result)
        report = ImportReport(tuple(results))
        await self.after_write()
        if replace:
            if report.failed:
                return ImportReport(report.files, replace_skipped=True)
            article_ids = {a.id for p in parsed for a in p.articles}
            skus = {p.sku for item in parsed for p in item.products}
            has_md = any(p.articles for p in parsed)
            has_csv = any(p.products for p in parsed)
            removed_a, removed_p = await self._remove_missing(
                article_ids if has_md else None, skus if has_csv else None, editor=editor
            )
            await self.after_write()
            return ImportReport(report.files, tuple(removed_a), tuple(removed_p))
        return report

    async def reembed(self, *, batch: int = 64) -> int:
        """Re-embed every chunk not made by the current embedder; returns how many.

        New vectors go to ``kb_embedding_staging`` batch by batch (a failed run keeps
        its progress and resumes), then replace the live ones in one transaction. If
        the embedding model fails, the error is raised and the live vectors are
        untouched: retrieval never sees a half re-embedded base.
        """
        name = self._embedder.name
        swapped = 0
        for _ in range(5):  # chunks written meanwhile by an older process: go again
            await self._stage_stale(name, batch)
            async with self._sessions.begin() as session:
                result = await session.execute(_SWAP_STAGED, {"model": name})
                count = int(result.rowcount or 0)  # type: ignore[attr-defined]
                await session.execute(delete(EmbeddingStaging))
                if count:
                    await drop_other_indexes(session, keep=name)
                    await _bump(session)
                stale = await session.scalar(
                    select(func.count()).select_from(Chunk)
                    .where(or_(Chunk.model != name, Chunk.embedding.is_(None)))
                )
            swapped += count
            if not stale:
                break
        await self.after_write()
        return swapped

    # -- derived data: lexicon, second model's vectors, re-cutting -----------------------

    async def after_write(self) -> None:
        """Bring derived data up to date: the BM25 lexicon, then the second model's
        vectors of new chunks (retrieval ranks them without it meanwhile)."""
        await refresh_lexicon(self._sessions)
        await self._derived.fill_second_vectors()

    async def maintain(self) -> dict[str, int]:
        """At startup: articles cut with older chunking rules are cut again, stale
        primary vectors re-embedded, the lexicon and second vectors brought up to date."""
        recut = await self._derived.recut_if_needed(self._embed)
        if recut:
            await self.after_write()
        redone = await self.reembed()
        filled = await self._derived.fill_second_vectors()
        return {"recut": recut, "reembedded": redone, "second_vectors": filled}

    async def fill_second_vectors(self, *, batch: int = 32) -> int:
        """Vectors of the second model for chunks that lack one; returns how many."""
        return await self._derived.fill_second_vectors(batch=batch)

    async def _stage_stale(self, name: str, batch: int) -> None:
        while True:
            async with self._sessions() as session:
                staged = select(EmbeddingStaging.chunk_id).where(
                    EmbeddingStaging.chunk_id == Chunk.id, EmbeddingStaging.model == name
                )
                rows = (
                    await session.execute(
                        select(Chunk.id, Chunk.title, Chunk.heading, Chunk.text, Chunk.role)
                        .where(or_(Chunk.model != name, Chunk.embedding.is_(None)),
                               ~staged.exists())
                        .order_by(Chunk.id)
                        .limit(batch)
                    )
                ).all()
            if not rows:
                return
            vectors = await self._embed(
                [ChunkRow(0, r.title, r.heading, r.text, "", r.role) for r in rows]
            )
            async with self._sessions.begin() as session:
                await session.execute(
                    insert(EmbeddingStaging)
                    .values([{"chunk_id": r.id, "model": name, "embedding": v}
                             for r, v in zip(rows, vectors, strict=True)])
                    .on_conflict_do_nothing()
                )

    async def ensure_index(self, dimensions: int) -> None:
        """The current model's HNSW index exists (created once, on first use)."""
        key = (self._embedder.name, dimensions)
        if key in self._indexed:
            return
        async with self._sessions.begin() as session:
            await ensure_index(session, key[0], dimensions)
        self._indexed.add(key)

    # -- internals -------------------------------------------------------------------

    async def _embed(self, rows: Sequence[ChunkRow]) -> list[Vector]:
        if not rows:
            return []
        vectors = await self._embedder.embed([embedding_input(r) for r in rows])
        if len(vectors) != len(rows) or any(
            len(v) != self._embedder.dimensions for v in vectors
        ):
            raise KnowledgeError(f"embedder {self._embedder.name} returned malformed vectors")
        await self.ensure_index(len(vectors[0]))
        return vectors

    async def _get(self, kind: ItemKind[Any, Row, View], key: str) -> View:
        async with self._sessions() as session:
            row = await session.get(kind.model, key)
        if row is None:
            raise EntryNotFound(f"{kind.entity} {key!r} not found")
        return kind.view(row)

    async def _list(
        self, kind: ItemKind[Any, Row, View], query: str, include_deleted: bool, limit: int,
        offset: int,
    ) -> list[View]:
        stmt = kind.listing(query, include_deleted=include_deleted, limit=limit, offset=offset)
        async with self._sessions() as session:
            rows = (await session.scalars(stmt)).all()
        return [kind.view(r) for r in rows]

    async def _save(self, kind: ItemKind[Doc, Any, View], doc: Doc, *, editor: str) -> View | None:
        vectors = await self._embed(kind.chunks(doc))
        async with self._sessions.begin() as session:
            saved = await kind.write(
                session, doc, vectors, model=self._embedder.name, editor=editor
            )
            if saved is not None:
                await _bump(session)
        await self.after_write()
        return saved

    async def _restore(
        self, kind: ItemKind[Doc, Any, Any], data: dict[str, Any], *, editor: str
    ) -> None:
        doc = kind.from_data(data)
        vectors = await self._embed(kind.chunks(doc))
        async with self._sessions.begin() as session:
            await kind.write(
                session, doc, vectors, model=self._embedder.name, editor=editor, action="restore"
            )
            await _bump(session)
        await self.after_write()

    async def _delete(self, kind: ItemKind[Any, Row, View], key: str, *, editor: str) -> View:
        async with self._sessions.begin() as session:
            row = await session.get(kind.model, key, with_for_update=True)
            if row is None or row.deleted_at is not None:
                raise EntryNotFound(f"{kind.entity} {key!r} not found")
            await kind.soft_delete(session, row, editor)
            await _bump(session)
            view = kind.view(row)
        await self.after_write()
        return view

    async def _prepare(
        self, kind: ItemKind[Doc, Any, Any], docs: Sequence[Doc]
    ) -> list[tuple[Doc, list[Vector]]]:
        """Each document with its chunks' vectors, all embedded in one call."""
        rows = [kind.chunks(d) for d in docs]
        flat = [r for group in rows for r in group]
        vectors = await self._embed(flat)
        out: list[tuple[Doc, list[Vector]]] = []
        start = 0
        for doc, group in zip(docs, rows, strict=True):
            out.append((doc, vectors[start : start + len(group)]))
            start += len(group)
        return out

    async def _import_one(self, item: ParsedFile, *, editor: str) -> FileResult:
        if item.error is not None:
            return FileResult(item.source, error=item.error.reason, line=item.error.line)
        model = self._embedder.name
        try:
            # A Markdown file holds one article: one embedding call, as for a CSV's products.
            articles = await self._prepare(ARTICLES, item.articles)
            products = await self._prepare(PRODUCTS, item.products)
            async with self._sessions.begin() as session:
                saved_a, same_a = await ARTICLES.write_all(
                    session, articles, model=model, editor=editor
                )
                saved_p, same_p = await PRODUCTS.write_all(
                    session, products, model=model, editor=editor
                )
                if saved_a or saved_p:
                    await _bump(session)
        except (KnowledgeError, SQLAlchemyError) as exc:
            reason = str(exc).splitlines()[0]
            return FileResult(item.source, error=f"not imported: {reason}")
        return FileResult(item.source, saved_a, saved_p, same_a + same_p)

    async def _remove_missing(
        self, article_ids: set[str] | None, skus: set[str] | None, *, editor: str
    ) -> tuple[list[str], list[str]]:
        removed_a: list[str] = []
        removed_p: list[str] = []
        async with self._sessions.begin() as session:
            if article_ids is not None:
                removed_a = await ARTICLES.remove_missing(session, article_ids, editor)
            if skus is not None:
                removed_p = await PRODUCTS.remove_missing(session, skus, editor)
            if removed_a or removed_p:
                await _bump(session)
        return removed_a, removed_p


async def _bump(session: AsyncSession) -> None:
    await session.execute(
        update(State).where(State.id == 1).values(revision=State.revision + 1,
                                                  updated_at=func.now())
    )
