"""The two kinds of versioned knowledge items, articles and products, and their views."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, or_
from sqlalchemy.orm import InstrumentedAttribute

from knowledge.documents import ArticleDoc, ProductDoc
from knowledge.indexing import ChunkRow, article_chunks, product_chunks
from knowledge.models import Article, Product
from knowledge.versioned import ItemKind

__all__ = ["ARTICLES", "PRODUCTS", "ArticleKind", "ArticleView", "ProductKind", "ProductView"]


@dataclass(frozen=True, slots=True)
class ArticleView:
    """An article as stored (current version)."""

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
    """A product as stored (current version)."""

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


class ArticleKind(ItemKind[ArticleDoc, Article, ArticleView]):
    """Articles: keyed by id, chunked by Markdown section plus one chunk per question."""

    entity = "article"
    model = Article

    def key_column(self) -> InstrumentedAttribute[str]:
        return Article.id

    def doc_key(self, doc: ArticleDoc) -> str:
        return doc.id

    def row_key(self, row: Article) -> str:
        return row.id

    def new_row(self, key: str, now: datetime) -> Article:
        return Article(id=key, version=1, created_at=now)

    def fill(self, row: Article, doc: ArticleDoc) -> None:
        row.title, row.kind, row.tags, row.body = doc.title, doc.kind, list(doc.tags), doc.body
        row.questions = list(doc.questions)

    def doc_data(self, doc: ArticleDoc) -> dict[str, Any]:
        return {"id": doc.id, "title": doc.title, "kind": doc.kind, "tags": list(doc.tags),
                "body": doc.body, "questions": list(doc.questions)}

    def row_data(self, row: Article) -> dict[str, Any]:
        return {"id": row.id, "title": row.title, "kind": row.kind,
                "tags": list(row.tags or []), "body": row.body,
                "questions": list(row.questions or [])}

    def from_data(self, data: dict[str, Any]) -> ArticleDoc:
        return ArticleDoc(
            data["id"], data["title"], data["kind"], tuple(data["tags"]), data["body"],
            tuple(data.get("questions") or ()),
        )

    def chunks(self, doc: ArticleDoc) -> list[ChunkRow]:
        return article_chunks(doc)

    def view(self, row: Article) -> ArticleView:
        return ArticleView(row.id, row.title, row.kind, tuple(row.tags or ()), row.body,
                           row.version, row.updated_by, row.updated_at,
                           row.deleted_at is not None, tuple(row.questions or ()))

    def ordering(self) -> Sequence[InstrumentedAttribute[str]]:
        return (Article.kind, Article.title)

    def matching(self, like: str) -> ColumnElement[bool]:
        folded = func.kb_fold(like)
        return or_(
            func.kb_fold(Article.title).like(folded),
            func.kb_fold(Article.body).like(folded),
            Article.id.ilike(like),
        )


class ProductKind(ItemKind[ProductDoc, Product, ProductView]):
    """Products: keyed by sku, one chunk (the product card) each."""

    entity = "product"
    model = Product

    def key_column(self) -> InstrumentedAttribute[str]:
        return Product.sku

    def doc_key(self, doc: ProductDoc) -> str:
        return doc.sku

    def row_key(self, row: Product) -> str:
        return row.sku

    def new_row(self, key: str, now: datetime) -> Product:
        return Product(sku=key, version=1, created_at=now)

    def fill(self, row: Product, doc: ProductDoc) -> None:
        row.name, row.description, row.price = doc.name, doc.description, doc.price
        row.currency, row.stock, row.category = doc.currency, doc.stock, doc.category

    def doc_data(self, doc: ProductDoc) -> dict[str, Any]:
        return {"sku": doc.sku, "name": doc.name, "description": doc.description,
                "price": f"{doc.price:.2f}", "currency": doc.currency, "stock": doc.stock,
                "category": doc.category}

    def row_data(self, row: Product) -> dict[str, Any]:
        return {"sku": row.sku, "name": row.name, "description": row.description,
                "price": f"{Decimal(row.price):.2f}", "currency": row.currency,
                "stock": row.stock, "category": row.category}

    def from_data(self, data: dict[str, Any]) -> ProductDoc:
        return ProductDoc(
            data["sku"], data["name"], data["description"], Decimal(data["price"]),
            data["currency"], data["stock"], data["category"],
        )

    def chunks(self, doc: ProductDoc) -> list[ChunkRow]:
        return product_chunks(doc)

    def view(self, row: Product) -> ProductView:
        return ProductView(row.sku, row.name, row.description, Decimal(row.price),
                           row.currency, row.stock, row.category, row.version, row.updated_by,
                           row.updated_at, row.deleted_at is not None)

    def ordering(self) -> Sequence[InstrumentedAttribute[str]]:
        return (Product.category, Product.name)

    def matching(self, like: str) -> ColumnElement[bool]:
        return or_(
            func.kb_fold(Product.name).like(func.kb_fold(like)),
            Product.sku.ilike(like),
            func.kb_fold(Product.category).like(func.kb_fold(like)),
        )


# Stateless: one instance of each kind serves every store.
ARTICLES = ArticleKind()
PRODUCTS = ProductKind()
