"""Admin API for the knowledge base: articles, products, versions, import, try a question."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from bot.answering.responder import ResponseRequest
from bot.api.auth import AdminDep, Principal, audit, require_page_role
from bot.api.deps import RuntimeDep
from bot.api.pages import render
from handoff.roles import Role
from knowledge.documents import validate_article, validate_product
from knowledge.rendering import render_markdown
from knowledge.store import ArticleView, ProductView, VersionView

router = APIRouter(prefix="/api/v1/kb", tags=["knowledge base"])
pages = APIRouter(include_in_schema=False)

MAX_UPLOAD_FILES = 200


class ArticleWrite(BaseModel):
    title: str = Field(max_length=300)
    kind: Literal["product", "policy", "faq"] = "faq"
    tags: list[str] = Field(default_factory=list, max_length=50)
    body: str = Field(max_length=100_000)
    questions: list[str] = Field(default_factory=list, max_length=40)


class ArticlePublic(BaseModel):
    id: str
    title: str
    kind: str
    tags: list[str]
    body: str
    questions: list[str]
    version: int
    updated_by: str
    updated_at: datetime
    deleted: bool


class ProductWrite(BaseModel):
    name: str = Field(max_length=300)
    description: str = Field(default="", max_length=5000)
    price: Decimal = Field(ge=0, max_digits=14, decimal_places=2)
    currency: str = Field(default="MXN", min_length=3, max_length=3)
    stock: int | None = Field(default=None, ge=0)
    category: str = Field(default="", max_length=120)


class ProductPublic(BaseModel):
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


class VersionPublic(BaseModel):
    version: int
    action: str
    data: dict[str, object]
    edited_by: str
    edited_at: datetime


class FilePublic(BaseModel):
    source: str
    ok: bool
    articles: int
    products: int
    unchanged: int
    error: str | None
    line: int | None


class ImportPublic(BaseModel):
    files: list[FilePublic]
    removed_articles: list[str]
    removed_products: list[str]
    summary: str


class TryRequest(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class HitPublic(BaseModel):
    source_id: str
    source_kind: str
    title: str
    heading: str
    role: str
    text: str
    score: float
    similarity: float
    text_rank: float


class TryPublic(BaseModel):
    hits: list[HitPublic]
    retrieval_ms: float
    intent: str
    confidence: float
    escalate: bool
    reason: str | None
    replies: list[str]
    sources: list[str]


class PreviewRequest(BaseModel):
    body: str = Field(max_length=100_000)


IntentName = Literal["greeting", "thanks", "question", "product", "human_request", "complaint",
                     "opt_out", "other"]  # the values of bot.answering.rules.Intent


class ExampleWrite(BaseModel):
    intent: IntentName
    text: str = Field(min_length=1, max_length=500)


class ExamplePublic(BaseModel):
    id: int
    intent: str
    text: str
    created_by: str


def _article(view: ArticleView) -> ArticlePublic:
    return ArticlePublic(
        id=view.id, title=view.title, kind=view.kind, tags=list(view.tags), body=view.body,
        questions=list(view.questions), version=view.version, updated_by=view.updated_by,
        updated_at=view.updated_at, deleted=view.deleted,
    )


def _product(view: ProductView) -> ProductPublic:
    return ProductPublic(
        sku=view.sku, name=view.name, description=view.description, price=view.price,
        currency=view.currency, stock=view.stock, category=view.category, version=view.version,
        updated_by=view.updated_by, updated_at=view.updated_at, deleted=view.deleted,
    )


def _version(view: VersionView) -> VersionPublic:
    return VersionPublic(version=view.version, action=view.action, data=view.data,
                         edited_by=view.edited_by, edited_at=view.edited_at)


# -- articles ---------------------------------------------------------------------------


@router.get("/articles")
async def list_articles(
    runtime: RuntimeDep, admin: AdminDep, q: str = Query("", max_length=200),
    include_deleted: bool = False,
) -> list[ArticlePublic]:
    views = await runtime.knowledge.list_articles(query=q, include_deleted=include_deleted)
    return [_article(v) for v in views]


@router.get("/articles/{article_id}")
async def get_article(article_id: str, runtime: RuntimeDep, admin: AdminDep) -> ArticlePublic:
    return _article(await runtime.knowledge.get_article(article_id))


@router.put("/articles/{article_id}")
async def save_article(
    article_id: str, body: ArticleWrite, runtime: RuntimeDep, admin: AdminDep
) -> ArticlePublic:
    doc = validate_article(
        f"article {article_id}", id=article_id, title=body.title, kind=body.kind,
        tags=body.tags, body=body.body, questions=body.questions,
    )
    saved = await runtime.knowledge.save_article(doc, editor=admin.email)
    view = await runtime.knowledge.get_article(article_id)
    if saved is not None:
        verb = "create" if saved.version == 1 else "update"
        await audit(runtime, admin, f"kb.article.{verb}", f"article:{article_id}",
                    version=view.version, title=view.title)
    return _article(view)


@router.delete("/articles/{article_id}")
async def delete_article(article_id: str, runtime: RuntimeDep, admin: AdminDep) -> ArticlePublic:
    view = await runtime.knowledge.delete_article(article_id, editor=admin.email)
    await audit(runtime, admin, "kb.article.delete", f"article:{article_id}")
    return _article(view)


@router.get("/articles/{article_id}/versions")
async def article_versions(
    article_id: str, runtime: RuntimeDep, admin: AdminDep
) -> list[VersionPublic]:
    return [_version(v) for v in await runtime.knowledge.versions("article", article_id)]


@router.post("/articles/{article_id}/versions/{version}/restore")
async def restore_article(
    article_id: str, version: int, runtime: RuntimeDep, admin: AdminDep
) -> ArticlePublic:
    await runtime.knowledge.restore("article", article_id, version, editor=admin.email)
    view = await runtime.knowledge.get_article(article_id)
    await audit(runtime, admin, "kb.article.restore", f"article:{article_id}",
                restored_version=version, version=view.version)
    return _article(view)


# -- products ---------------------------------------------------------------------------


@router.get("/products")
async def list_products(
    runtime: RuntimeDep, admin: AdminDep, q: str = Query("", max_length=200),
    include_deleted: bool = False,
) -> list[ProductPublic]:
    views = await runtime.knowledge.list_products(query=q, include_deleted=include_deleted)
    return [_product(v) for v in views]


@router.get("/products/{sku}")
async def get_product(sku: str, runtime: RuntimeDep, admin: AdminDep) -> ProductPublic:
    return _product(await runtime.knowledge.get_product(sku))


@router.put("/products/{sku}")
async def save_product(
    sku: str, body: ProductWrite, runtime: RuntimeDep, admin: AdminDep
) -> ProductPublic:
    doc = validate_product(
        f"product {sku}", sku=sku, name=body.name, description=body.description,
        price=body.price, currency=body.currency, stock=body.stock, category=body.category,
    )
    saved = await runtime.knowledge.save_product(doc, editor=admin.email)
    view = await runtime.knowledge.get_product(sku)
    if saved is not None:
        verb = "create" if saved.version == 1 else "update"
        await audit(runtime, admin, f"kb.product.{verb}", f"product:{sku}",
                    version=view.version, name=view.name)
    return _product(view)


@router.delete("/products/{sku}")
async def delete_product(sku: str, runtime: RuntimeDep, admin: AdminDep) -> ProductPublic:
    view = await runtime.knowledge.delete_product(sku, editor=admin.email)
    await audit(runtime, admin, "kb.product.delete", f"product:{sku}")
    return _product(view)


@router.get("/products/{sku}/versions")
async def product_versions(sku: str, runtime: RuntimeDep, admin: AdminDep) -> list[VersionPublic]:
    return [_version(v) for v in await runtime.knowledge.versions("product", sku)]


@router.post("/products/{sku}/versions/{version}/restore")
async def restore_product(
    sku: str, version: int, runtime: RuntimeDep, admin: AdminDep
) -> ProductPublic:
    await runtime.knowledge.restore("product", sku, version, editor=admin.email)
    view = await runtime.knowledge.get_product(sku)
    await audit(runtime, admin, "kb.product.restore", f"product:{sku}",
                restored_version=version, version=view.version)
    return _product(view)


# -- import, preview, try, examples -----------------------------------------------------


@router.post("/import")
async def import_files(
    runtime: RuntimeDep, admin: AdminDep,
    files: Annotated[list[UploadFile], File(description=".md and .csv files")],
    replace: Annotated[bool, Form()] = False,
) -> ImportPublic:
    loaded = [(f.filename or "upload", await f.read()) for f in files[:MAX_UPLOAD_FILES]]
    report = await runtime.knowledge.import_files(loaded, editor=admin.email, replace=replace)
    await audit(runtime, admin, "kb.import", None, files=[name for name, _ in loaded],
                replace=replace, summary=report.summary())
    return ImportPublic(
        files=[FilePublic(source=f.source, ok=f.ok, articles=f.articles, products=f.products,
                          unchanged=f.unchanged, error=f.error, line=f.line)
               for f in report.files],
        removed_articles=list(report.removed_articles),
        removed_products=list(report.removed_products),
        summary=report.summary(),
    )


@router.post("/preview")
async def preview(body: PreviewRequest, admin: AdminDep) -> dict[str, str]:
    """Safe HTML of a Markdown body (raw HTML in it is escaped)."""
    return {"html": render_markdown(body.body)}


@router.post("/try")
async def try_question(body: TryRequest, runtime: RuntimeDep, admin: AdminDep) -> TryPublic:
    """What the bot would retrieve (with scores) and answer; nothing is sent or stored."""
    retrieval = await runtime.retriever.search(body.text, limit=runtime.settings.knowledge.top_k)
    decision = await runtime.responder.respond(
        ResponseRequest(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), text=body.text)
    )
    return TryPublic(
        hits=[HitPublic(source_id=h.source_id, source_kind=h.source_kind, title=h.title,
                        heading=h.heading, role=h.role, text=h.text, score=round(h.score, 4),
                        similarity=round(h.similarity, 4), text_rank=round(h.text_rank, 4))
              for h in retrieval.hits],
        retrieval_ms=round(retrieval.elapsed_ms, 2), intent=decision.intent,
        confidence=decision.confidence, escalate=decision.escalate, reason=decision.reason,
        replies=list(decision.replies), sources=list(decision.sources),
    )


@router.get("/intent-examples")
async def list_examples(
    runtime: RuntimeDep, admin: AdminDep, intent: IntentName | Literal[""] = "",
    q: str = Query("", max_length=200),
) -> list[ExamplePublic]:
    """Labelled examples, optionally of one intent and containing ``q`` (accents ignored)."""
    examples = await runtime.intent_examples.all(intent=intent or None, query=q)
    return [ExamplePublic(id=e.id, intent=e.intent, text=e.text, created_by=e.created_by)
            for e in examples]


@router.post("/intent-examples", status_code=status.HTTP_201_CREATED)
async def add_example(body: ExampleWrite, runtime: RuntimeDep, admin: AdminDep) -> ExamplePublic:
    e = await runtime.intent_examples.add(body.intent, body.text, created_by=admin.email)
    await audit(runtime, admin, "kb.intent_example.create", f"intent_example:{e.id}",
                intent=e.intent)
    return ExamplePublic(id=e.id, intent=e.intent, text=e.text, created_by=e.created_by)


@router.delete("/intent-examples/{example_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_example(example_id: int, runtime: RuntimeDep, admin: AdminDep) -> None:
    await runtime.intent_examples.remove(example_id)
    await audit(runtime, admin, "kb.intent_example.delete", f"intent_example:{example_id}")


# -- pages ------------------------------------------------------------------------------

AdminPage = Annotated[Principal, Depends(require_page_role(Role.ADMIN))]


@pages.get("/admin/kb", response_class=HTMLResponse)
async def kb_page(request: Request, user: AdminPage) -> HTMLResponse:
    """The editor: articles (list, search, edit with preview), catalog, intent examples,
    import upload, try a question."""
    return _editor(request, user, "list")


@pages.get("/admin/kb/catalog", response_class=HTMLResponse)
async def catalog_page(request: Request, user: AdminPage) -> HTMLResponse:
    """The editor opened on the product catalog."""
    return _editor(request, user, "catalog")


@pages.get("/admin/kb/intents", response_class=HTMLResponse)
async def intents_page(request: Request, user: AdminPage) -> HTMLResponse:
    """The editor opened on the intent classifier's labelled examples."""
    return _editor(request, user, "intents")


def _editor(request: Request, user: Principal, tab: str) -> HTMLResponse:
    return render(request, "kb.html", user=user, areas=("kb",), title="nav.kb", script="kb",
                  context={"tab": tab})
