"""The knowledge-base service: save, import, delete, restore, list, re-embed.

Every write runs in one transaction that also writes a version row (who, when)
and bumps the revision in ``kb_state``. Chunks and embeddings are rebuilt for
the record that changed; embeddings are computed before the transaction opens.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.chunking import chunk_markdown
from knowledge.documents import ArticleDoc, ProductDoc, parse_csv, parse_markdown
from knowledge.embeddings import Embedder, Vector
from knowledge.errors import DocumentError, EntryNotFound, KnowledgeError
from knowledge.models import Article, Chunk, EmbeddingStaging, Product, State, Version
from knowledge.vectors import drop_other_indexes, ensure_index


@dataclass(frozen=True, slots=True)
class ArticleView:
    id: str
    title: str
    kind: str
    tags: tuple[str, ...]
    body: str
    version: int
    updated_by: str
    updated_at: datetime
    deleted: bool
    questions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProductView:
    sku: str
    name: str
    description: str
    price: Decimal
    currency: str
    stock: int | None
    category: str
    version: int
    updated_by: str
    updated_at: datetime
    deleted: bool


@dataclass(frozen=True, slots=True)
class VersionView:
    entity: str
    key: str
    version: int
    action: str
    data: dict[str, Any]
    edited_by: str
    edited_at: datetime


@dataclass(frozen=True, slots=True)
class FileResult:
    source: str
    articles: int = 0
    products: int = 0
    unchanged: int = 0
    error: str | None = None
    line: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class ImportReport:
    files: tuple[FileResult, ...]
    removed_articles: tuple[str, ...] = ()
    removed_products: tuple[str, ...] = ()
    replace_skipped: bool = False

    @property
    def failed(self) -> tuple[FileResult, ...]:
        return tuple(f for f in self.files if not f.ok)

    def summary(self) -> str:
        articles = sum(f.articles for f in self.files)
        products = sum(f.products for f in self.files)
        unchanged = sum(f.unchanged for f in self.files)
        text = (
            f"{len(self.files) - len(self.failed)} files imported, {len(self.failed)} failed: "
            f"{articles} articles and {products} products saved, {unchanged} unchanged"
        )
        if self.removed_articles or self.removed_products:
            text += (
                f", removed {len(self.removed_articles)} articles and "
                f"{len(self.removed_products)} products"
            )
        if self.replace_skipped:
            text += " (--replace skipped: some files failed)"
        return text


@dataclass(frozen=True, slots=True)
class _Parsed:
    source: str
    articles: list[ArticleDoc] = field(default_factory=list)
    products: list[ProductDoc] = field(default_factory=list)
    error: DocumentError | None = None


@dataclass(frozen=True, slots=True)
class _ChunkRow:
    ordinal: int
    title: str
    heading: str
    text: str
    extra: str
    role: str = "passage"


_INSERT_CHUNK = text(
    "INSERT INTO kb_chunks (source_kind, source_id, ordinal, title, heading, role, text, model, "
    "embedding, tsv) VALUES (:kind, :sid, :ordinal, CAST(:title AS text), "
    "CAST(:heading AS text), :role, CAST(:text AS text), :model, CAST(:embedding AS vector), "
    "setweight(to_tsvector('spanish', kb_fold(CAST(:title AS text))), 'A') || "
    "setweight(to_tsvector('spanish', kb_fold(CAST(:heading AS text))), 'B') || "
    "setweight(to_tsvector('spanish', kb_fold(CAST(:extra AS text))), 'C') || "
    "to_tsvector('spanish', kb_fold(CAST(:text AS text))))"
)

_SWAP_STAGED = text(
    "UPDATE kb_chunks c SET embedding = s.embedding, model = s.model "
    "FROM kb_embedding_staging s WHERE s.chunk_id = c.id AND s.model = :model"
)


_FLOAT = "{:.7g}"


def vector_literal(vector: Vector) -> str:
    return "[" + ",".join(map(_FLOAT.format, vector)) + "]"


def article_chunks(doc: ArticleDoc) -> list[_ChunkRow]:
    extra = " ".join(doc.tags)
    rows = [
        _ChunkRow(d.ordinal, doc.title, d.heading, d.text, extra)
        for d in chunk_markdown(doc.body)
    ]
    # The customer questions the article answers: matched question-to-question,
    # which is where sentence encoders are strongest.
    rows += [
        _ChunkRow(len(rows) + i, doc.title, "", question, extra, "question")
        for i, question in enumerate(doc.questions)
    ]
    return rows


def product_chunks(doc: ProductDoc) -> list[_ChunkRow]:
    body = doc.description or doc.name
    return [_ChunkRow(0, doc.name, doc.category, body, f"{doc.sku} {doc.category}")]


def embedding_input(row: _ChunkRow) -> str:
    if row.role == "question":
        return row.text
    head = f"{row.title}. {row.heading}." if row.heading else f"{row.title}."
    return f"{head} {row.text}"


class KnowledgeStore:
    """Articles and products with versions, chunks and embeddings."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], embedder: Embedder) -> None:
        self._sessions = sessions
        self._embedder = embedder
        self._indexed: set[tuple[str, int]] = set()

    @property
    def embedder(self) -> Embedder:
        return self._embedder

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
        async with self._sessions() as session:
            row = await session.get(Article, article_id)
        if row is None:
            raise EntryNotFound(f"article {article_id!r} not found")
        return _article_view(row)

    async def get_product(self, sku: str) -> ProductView:
        async with self._sessions() as session:
            row = await session.get(Product, sku)
        if row is None:
            raise EntryNotFound(f"product {sku!r} not found")
        return _product_view(row)

    async def list_articles(
        self, *, query: str = "", include_deleted: bool = False, limit: int = 200, offset: int = 0
    ) -> list[ArticleView]:
        stmt = select(Article).order_by(Article.kind, Article.title).limit(limit).offset(offset)
        if not include_deleted:
            stmt = stmt.where(Article.deleted_at.is_(None))
        if query.strip():
            like = f"%{query.strip()}%"
            folded = func.kb_fold(like)
            stmt = stmt.where(
                or_(
                    func.kb_fold(Article.title).like(folded),
                    func.kb_fold(Article.body).like(folded),
                    Article.id.ilike(like),
                )
            )
        async with self._sessions() as session:
            rows = (await session.scalars(stmt)).all()
        return [_article_view(r) for r in rows]

    async def list_products(
        self, *, query: str = "", include_deleted: bool = False, limit: int = 500, offset: int = 0
    ) -> list[ProductView]:
        stmt = select(Product).order_by(Product.category, Product.name).limit(limit).offset(offset)
        if not include_deleted:
            stmt = stmt.where(Product.deleted_at.is_(None))
        if query.strip():
            like = f"%{query.strip()}%"
            stmt = stmt.where(
                or_(
                    func.kb_fold(Product.name).like(func.kb_fold(like)),
                    Product.sku.ilike(like),
                    func.kb_fold(Product.category).like(func.kb_fold(like)),
                )
            )
        async with self._sessions() as session:
            rows = (await session.scalars(stmt)).all()
        return [_product_view(r) for r in rows]

    async def products_by_sku(self, skus: Sequence[str]) -> dict[str, ProductView]:
        if not skus:
            return {}
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Product).where(Product.sku.in_(skus), Product.deleted_at.is_(None))
                )
            ).all()
        return {r.sku: _product_view(r) for r in rows}

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
        vectors = await self._embed(article_chunks(doc))
        async with self._sessions.begin() as session:
            saved = await self._write_article(session, doc, vectors, editor=editor)
            if saved is not None:
                await _bump(session)
        return saved

    async def save_product(self, doc: ProductDoc, *, editor: str) -> ProductView | None:
        """Create or update a product; ``None`` when nothing changed."""
        vectors = await self._embed(product_chunks(doc))
        async with self._sessions.begin() as session:
            saved = await self._write_product(session, doc, vectors, editor=editor)
            if saved is not None:
                await _bump(session)
        return saved

    async def delete_article(self, article_id: str, *, editor: str) -> ArticleView:
        async with self._sessions.begin() as session:
            row = await session.get(Article, article_id, with_for_update=True)
            if row is None or row.deleted_at is not None:
                raise EntryNotFound(f"article {article_id!r} not found")
            await self._soft_delete_article(session, row, editor)
            await _bump(session)
            return _article_view(row)

    async def delete_product(self, sku: str, *, editor: str) -> ProductView:
        async with self._sessions.begin() as session:
            row = await session.get(Product, sku, with_for_update=True)
            if row is None or row.deleted_at is not None:
                raise EntryNotFound(f"product {sku!r} not found")
            await self._soft_delete_product(session, row, editor)
            await _bump(session)
            return _product_view(row)

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
            doc = ArticleDoc(
                data["id"], data["title"], data["kind"], tuple(data["tags"]), data["body"],
                tuple(data.get("questions") or ()),
            )
            vectors = await self._embed(article_chunks(doc))
            async with self._sessions.begin() as session:
                await self._write_article(session, doc, vectors, editor=editor, action="restore")
                await _bump(session)
        else:
            product = ProductDoc(
                data["sku"], data["name"], data["description"], Decimal(data["price"]),
                data["currency"], data["stock"], data["category"],
            )
            vectors = await self._embed(product_chunks(product))
            async with self._sessions.begin() as session:
                await self._write_product(session, product, vectors, editor=editor,
                                          action="restore")
                await _bump(session)

    async def import_files(
        self,
        files: Sequence[tuple[str, bytes]],
        *,
        editor: str,
        replace: bool = False,
        on_file: Callable[[FileResult], None] | None = None,
    ) -> ImportReport:
        """Import Markdown and CSV files, each one whole or not at all."""
        parsed = _check_duplicates([_parse(name, data) for name, data in files])
        results: list[FileResult] = []
        for item in parsed:
            result = await self._import_one(item, editor=editor)
            results.append(result)
            if on_file is not None:
                on_file(result)
        report = ImportReport(tuple(results))
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
        return swapped

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
                [_ChunkRow(0, r.title, r.heading, r.text, "", r.role) for r in rows]
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

    async def _embed(self, rows: Sequence[_ChunkRow]) -> list[Vector]:
        if not rows:
            return []
        vectors = await self._embedder.embed([embedding_input(r) for r in rows])
        if len(vectors) != len(rows) or any(
            len(v) != self._embedder.dimensions for v in vectors
        ):
            raise KnowledgeError(f"embedder {self._embedder.name} returned malformed vectors")
        await self.ensure_index(len(vectors[0]))
        return vectors

    async def _import_one(self, item: _Parsed, *, editor: str) -> FileResult:
        if item.error is not None:
            return FileResult(item.source, error=item.error.reason, line=item.error.line)
        try:
            prepared_a = [(a, await self._embed(article_chunks(a))) for a in item.articles]
            prepared_p = await self._prepare_products(item.products)
            saved_a = saved_p = unchanged = 0
            async with self._sessions.begin() as session:
                for article, vectors in prepared_a:
                    if await self._write_article(session, article, vectors, editor=editor):
                        saved_a += 1
                    else:
                        unchanged += 1
                for product, vectors in prepared_p:
                    if await self._write_product(session, product, vectors, editor=editor):
                        saved_p += 1
                    else:
                        unchanged += 1
                if saved_a or saved_p:
                    await _bump(session)
        except (KnowledgeError, SQLAlchemyError) as exc:
            reason = str(exc).splitlines()[0]
            return FileResult(item.source, error=f"not imported: {reason}")
        return FileResult(item.source, saved_a, saved_p, unchanged)

    async def _prepare_products(
        self, products: Sequence[ProductDoc]
    ) -> list[tuple[ProductDoc, list[Vector]]]:
        rows = [product_chunks(p) for p in products]
        flat = [r for group in rows for r in group]
        vectors = await self._embed(flat)
        out: list[tuple[ProductDoc, list[Vector]]] = []
        start = 0
        for product, group in zip(products, rows, strict=True):
            out.append((product, vectors[start : start + len(group)]))
            start += len(group)
        return out

    async def _write_article(
        self, session: AsyncSession, doc: ArticleDoc, vectors: list[Vector], *, editor: str,
        action: str | None = None,
    ) -> ArticleView | None:
        row = await session.get(Article, doc.id, with_for_update=True)
        data = {"id": doc.id, "title": doc.title, "kind": doc.kind, "tags": list(doc.tags),
                "body": doc.body, "questions": list(doc.questions)}
        if row is not None and row.deleted_at is None and _article_data(row) == data:
            return None
        now = await _now(session)
        if row is None:
            row = Article(id=doc.id, version=1, created_at=now)
            session.add(row)
            action = action or "create"
        else:
            row.version += 1
            action = action or ("restore" if row.deleted_at is not None else "update")
        row.title, row.kind, row.tags, row.body = doc.title, doc.kind, list(doc.tags), doc.body
        row.questions = list(doc.questions)
        row.updated_by, row.updated_at, row.deleted_at = editor, now, None
        await session.flush()
        await self._replace_chunks(session, "article", doc.id, article_chunks(doc), vectors)
        session.add(Version(entity="article", key=doc.id, version=row.version, action=action,
                            data=data, edited_by=editor, edited_at=now))
        await session.flush()
        return _article_view(row)

    async def _write_product(
        self, session: AsyncSession, doc: ProductDoc, vectors: list[Vector], *, editor: str,
        action: str | None = None,
    ) -> ProductView | None:
        row = await session.get(Product, doc.sku, with_for_update=True)
        data = _product_doc_data(doc)
        if row is not None and row.deleted_at is None and _product_data(row) == data:
            return None
        now = await _now(session)
        if row is None:
            row = Product(sku=doc.sku, version=1, created_at=now)
            session.add(row)
            action = action or "create"
        else:
            row.version += 1
            action = action or ("restore" if row.deleted_at is not None else "update")
        row.name, row.description, row.price = doc.name, doc.description, doc.price
        row.currency, row.stock, row.category = doc.currency, doc.stock, doc.category
        row.updated_by, row.updated_at, row.deleted_at = editor, now, None
        await session.flush()
        await self._replace_chunks(session, "product", doc.sku, product_chunks(doc), vectors)
        session.add(Version(entity="product", key=doc.sku, version=row.version, action=action,
                            data=data, edited_by=editor, edited_at=now))
        await session.flush()
        return _product_view(row)

    async def _replace_chunks(
        self, session: AsyncSession, kind: str, source_id: str, rows: Sequence[_ChunkRow],
        vectors: Sequence[Vector],
    ) -> None:
        await session.execute(
            delete(Chunk).where(Chunk.source_kind == kind, Chunk.source_id == source_id)
        )
        if not rows:
            return
        await session.execute(
            _INSERT_CHUNK,
            [
                {"kind": kind, "sid": source_id, "ordinal": r.ordinal, "title": r.title,
                 "heading": r.heading, "text": r.text, "extra": r.extra, "role": r.role,
                 "model": self._embedder.name, "embedding": vector_literal(v)}
                for r, v in zip(rows, vectors, strict=True)
            ],
        )

    async def _soft_delete_article(self, session: AsyncSession, row: Article, editor: str) -> None:
        now = await _now(session)
        row.version += 1
        row.deleted_at, row.updated_by, row.updated_at = now, editor, now
        await session.execute(
            delete(Chunk).where(Chunk.source_kind == "article", Chunk.source_id == row.id)
        )
        session.add(Version(entity="article", key=row.id, version=row.version, action="delete",
                            data=_article_data(row), edited_by=editor, edited_at=now))
        await session.flush()

    async def _soft_delete_product(self, session: AsyncSession, row: Product, editor: str) -> None:
        now = await _now(session)
        row.version += 1
        row.deleted_at, row.updated_by, row.updated_at = now, editor, now
        await session.execute(
            delete(Chunk).where(Chunk.source_kind == "product", Chunk.source_id == row.sku)
        )
        session.add(Version(entity="product", key=row.sku, version=row.version, action="delete",
                            data=_product_data(row), edited_by=editor, edited_at=now))
        await session.flush()

    async def _remove_missing(
        self, article_ids: set[str] | None, skus: set[str] | None, *, editor: str
    ) -> tuple[list[str], list[str]]:
        removed_a: list[str] = []
        removed_p: list[str] = []
        async with self._sessions.begin() as session:
            if article_ids is not None:
                for row in (
                    await session.scalars(
                        select(Article).where(Article.deleted_at.is_(None),
                                              Article.id.not_in(article_ids))
                        .with_for_update()
                    )
                ).all():
                    await self._soft_delete_article(session, row, editor)
                    removed_a.append(row.id)
            if skus is not None:
                for prow in (
                    await session.scalars(
                        select(Product).where(Product.deleted_at.is_(None),
                                              Product.sku.not_in(skus))
                        .with_for_update()
                    )
                ).all():
                    await self._soft_delete_product(session, prow, editor)
                    removed_p.append(prow.sku)
            if removed_a or removed_p:
                await _bump(session)
        return removed_a, removed_p


def _parse(source: str, data: bytes) -> _Parsed:
    try:
        if source.lower().endswith(".csv"):
            return _Parsed(source, products=parse_csv(source, data))
        if source.lower().endswith((".md", ".markdown")):
            return _Parsed(source, articles=[parse_markdown(source, data)])
        raise DocumentError(source, "unsupported file type (use .md or .csv)")
    except DocumentError as exc:
        return _Parsed(source, error=exc)


def _check_duplicates(parsed: list[_Parsed]) -> list[_Parsed]:
    """An id or sku defined by two files of one import fails both files."""
    ids = Counter(a.id for p in parsed for a in p.articles)
    skus = Counter(x.sku for p in parsed for x in p.products)
    owners: dict[str, list[str]] = {}
    for p in parsed:
        for key in [f"id {a.id!r}" for a in p.articles] + [f"sku {x.sku!r}" for x in p.products]:
            owners.setdefault(key, []).append(p.source)
    out = []
    for p in parsed:
        dup = [f"id {a.id!r}" for a in p.articles if ids[a.id] > 1]
        dup += [f"sku {x.sku!r}" for x in p.products if skus[x.sku] > 1]
        if dup:
            others = sorted({s for key in dup for s in owners[key] if s != p.source})
            error = DocumentError(
                p.source, f"duplicate {dup[0]} (also in {', '.join(others)})",
                line=next((x.line for x in p.products if skus[x.sku] > 1), None) or None,
            )
            out.append(_Parsed(p.source, error=error))
        else:
            out.append(p)
    return out


async def _now(session: AsyncSession) -> datetime:
    """The transaction's timestamp (one clock: the database's)."""
    value = await session.scalar(select(func.now()))
    assert isinstance(value, datetime)
    return value


async def _bump(session: AsyncSession) -> None:
    await session.execute(
        update(State).where(State.id == 1).values(revision=State.revision + 1,
                                                  updated_at=func.now())
    )


def _article_data(row: Article) -> dict[str, Any]:
    return {"id": row.id, "title": row.title, "kind": row.kind, "tags": list(row.tags or []),
            "body": row.body, "questions": list(row.questions or [])}


def _product_data(row: Product) -> dict[str, Any]:
    return {"sku": row.sku, "name": row.name, "description": row.description,
            "price": f"{Decimal(row.price):.2f}", "currency": row.currency, "stock": row.stock,
            "category": row.category}


def _product_doc_data(doc: ProductDoc) -> dict[str, Any]:
    return {"sku": doc.sku, "name": doc.name, "description": doc.description,
            "price": f"{doc.price:.2f}", "currency": doc.currency, "stock": doc.stock,
            "category": doc.category}


def _article_view(row: Article) -> ArticleView:
    return ArticleView(row.id, row.title, row.kind, tuple(row.tags or ()), row.body, row.version,
                       row.updated_by, row.updated_at, row.deleted_at is not None,
                       tuple(row.questions or ()))


def _product_view(row: Product) -> ProductView:
    return ProductView(row.sku, row.name, row.description, Decimal(row.price), row.currency,
                       row.stock, row.category, row.version, row.updated_by, row.updated_at,
                       row.deleted_at is not None)

