"""Versioned knowledge items: the one write path articles and products share.

A kind (``knowledge.kinds``) says how its table, document, chunks and view look;
saving, restoring and soft-deleting are the same for every kind: the row's version
goes up, its chunks are rebuilt (or dropped), and a ``kb_versions`` row records the
full record with who and when. The caller owns the transaction and the revision bump.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from knowledge.embeddings import Vector
from knowledge.indexing import ChunkRow, delete_chunks, replace_chunks
from knowledge.models import Article, Product, Version

__all__ = ["Doc", "ItemKind", "Row", "View", "db_now"]

Doc = TypeVar("Doc")
Row = TypeVar("Row", Article, Product)
View = TypeVar("View")


class ItemKind(ABC, Generic[Doc, Row, View]):
    """One kind of versioned item: its table and key, document, chunks and view."""

    entity: str  # ``kb_versions.entity`` and ``kb_chunks.source_kind``
    model: type[Row]

    @abstractmethod
    def key_column(self) -> InstrumentedAttribute[str]: ...

    @abstractmethod
    def doc_key(self, doc: Doc) -> str: ...

    @abstractmethod
    def row_key(self, row: Row) -> str: ...

    @abstractmethod
    def new_row(self, key: str, now: datetime) -> Row: ...

    @abstractmethod
    def fill(self, row: Row, doc: Doc) -> None:
        """Copy the document's fields onto the row."""

    @abstractmethod
    def doc_data(self, doc: Doc) -> dict[str, Any]:
        """The record as stored in ``kb_versions.data``."""

    @abstractmethod
    def row_data(self, row: Row) -> dict[str, Any]:
        """The row's record, comparable with ``doc_data``."""

    @abstractmethod
    def from_data(self, data: dict[str, Any]) -> Doc:
        """The document of a stored version (to restore it)."""

    @abstractmethod
    def chunks(self, doc: Doc) -> list[ChunkRow]: ...

    @abstractmethod
    def view(self, row: Row) -> View: ...

    @abstractmethod
    def ordering(self) -> Sequence[InstrumentedAttribute[str]]: ...

    @abstractmethod
    def matching(self, like: str) -> ColumnElement[bool]:
        """The search filter for a ``%text%`` pattern."""

    def listing(
        self, query: str, *, include_deleted: bool, limit: int, offset: int
    ) -> Select[Row]:
        stmt = select(self.model).order_by(*self.ordering()).limit(limit).offset(offset)
        if not include_deleted:
            stmt = stmt.where(self.model.deleted_at.is_(None))
        if query.strip():
            stmt = stmt.where(self.matching(f"%{query.strip()}%"))
        return stmt

    async def write(
        self, session: AsyncSession, doc: Doc, vectors: list[Vector], *, model: str,
        editor: str, action: str | None = None,
    ) -> View | None:
        """Create or update (or undelete) the item; ``None`` when nothing changed."""
        key = self.doc_key(doc)
        row = await session.get(self.model, key, with_for_update=True)
        data = self.doc_data(doc)
        if row is not None and row.deleted_at is None and self.row_data(row) == data:
            return None
        now = await db_now(session)
        if row is None:
            row = self.new_row(key, now)
            session.add(row)
            action = action or "create"
        else:
            row.version += 1
            action = action or ("restore" if row.deleted_at is not None else "update")
        self.fill(row, doc)
        row.updated_by, row.updated_at, row.deleted_at = editor, now, None
        await session.flush()
        await replace_chunks(session, self.entity, key, self.chunks(doc), vectors, model=model)
        session.add(Version(entity=self.entity, key=key, version=row.version, action=action,
                            data=data, edited_by=editor, edited_at=now))
        await session.flush()
        return self.view(row)

    async def write_all(
        self, session: AsyncSession, prepared: Sequence[tuple[Doc, list[Vector]]], *,
        model: str, editor: str,
    ) -> tuple[int, int]:
        """Write each document with its vectors; (saved, unchanged) counts."""
        saved = unchanged = 0
        for doc, vectors in prepared:
            if await self.write(session, doc, vectors, model=model, editor=editor):
                saved += 1
            else:
                unchanged += 1
        return saved, unchanged

    async def soft_delete(self, session: AsyncSession, row: Row, editor: str) -> None:
        now = await db_now(session)
        row.version += 1
        row.deleted_at, row.updated_by, row.updated_at = now, editor, now
        key = self.row_key(row)
        await delete_chunks(session, self.entity, key)
        session.add(Version(entity=self.entity, key=key, version=row.version, action="delete",
                            data=self.row_data(row), edited_by=editor, edited_at=now))
        await session.flush()

    async def remove_missing(
        self, session: AsyncSession, keep: set[str], editor: str
    ) -> list[str]:
        """Soft-delete every live item whose key is not in ``keep``; their keys."""
        removed: list[str] = []
        for row in (
            await session.scalars(
                select(self.model)
                .where(self.model.deleted_at.is_(None), self.key_column().not_in(keep))
                .with_for_update()
            )
        ).all():
            await self.soft_delete(session, row, editor)
            removed.append(self.row_key(row))
        return removed


async def db_now(session: AsyncSession) -> datetime:
    """The transaction's timestamp (one clock: the database's)."""
    value = await session.scalar(select(func.now()))
    assert isinstance(value, datetime)
    return value
