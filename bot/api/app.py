"""The FastAPI application factory (the HTTP half of the composition root)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.api.auth import LoginRequired, PageForbidden
from bot.api.guard import RequestGuard
from bot.api.localize import ErrorTranslator, LocalizedErrors
from bot.api.pages import PageTexts, render
from bot.api.routes import (
    analytics,
    audit,
    auth,
    campaigns,
    contacts,
    health,
    inbox,
    integrations,
    knowledge,
    llm,
    media,
    sequences,
    shell,
    simulator,
    staff,
    suggestions,
    whatsapp_cloud,
    whatsapp_numbers,
    workspace,
)
from bot.errors import (
    AudioUnusable,
    CampaignRejected,
    CampaignStateError,
    InvalidMessage,
    InvalidPhoneNumber,
    MediaRejected,
    MediaStoreError,
    NotFound,
    SequenceConflict,
    SequenceRejected,
    WebhookTargetRefused,
)
from bot.logs import get_logger
from bot.wiring.runtime import Runtime
from handoff.auth import InvalidUser, UserExists
from handoff.errors import HandoffError
from knowledge.errors import (
    DocumentError,
    EmbeddingError,
    EntryNotFound,
    KnowledgeError,
    SuggestionConflict,
)

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
log = get_logger("atiende.api")

RuntimeFactory = Callable[[], Awaitable[Runtime]]


def create_app(runtime_factory: RuntimeFactory, *, run_worker: bool = True) -> FastAPI:
    """Build the app; ``runtime_factory`` is awaited at startup, closed at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await runtime_factory()
        app.state.runtime = runtime
        if run_worker:
            runtime.start_worker()
        else:
            runtime.watch_settings()
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(
        title="Atiende",
        version="0.1.0",
        description="WhatsApp customer-service bot: API for the simulator, agents and admins.",
        lifespan=lifespan,
    )
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    app.state.texts = texts = PageTexts()
    app.add_middleware(RequestGuard)  # inside LocalizedErrors: its refusals are translated
    app.add_middleware(LocalizedErrors, translator=ErrorTranslator(texts))
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(shell.pages)
    app.include_router(workspace.router)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(auth.pages)
    app.include_router(simulator.router)
    app.include_router(audit.router)
    app.include_router(audit.pages)
    app.include_router(analytics.router)
    app.include_router(analytics.pages)
    app.include_router(simulator.pages)
    app.include_router(whatsapp_cloud.router)
    app.include_router(whatsapp_numbers.router)
    app.include_router(whatsapp_numbers.pages)
    app.include_router(inbox.router)
    app.include_router(staff.router)
    app.include_router(integrations.router)
    app.include_router(media.router)
    app.include_router(media.outgoing)
    app.include_router(campaigns.router)
    app.include_router(campaigns.pages)
    app.include_router(contacts.router)
    app.include_router(contacts.pages)
    app.include_router(sequences.router)
    app.include_router(sequences.pages)
    app.include_router(llm.router)
    app.include_router(llm.pages)
    app.include_router(knowledge.router)
    app.include_router(knowledge.pages)
    app.include_router(suggestions.router)
    app.include_router(suggestions.marking)
    app.include_router(suggestions.pages)
    _install_error_handlers(app)
    _install_http_handlers(app)
    _install_knowledge_handlers(app)
    _install_media_handlers(app)
    _install_campaign_handlers(app)
    _install_sequence_handlers(app)
    return app


def _install_knowledge_handlers(app: FastAPI) -> None:
    @app.exception_handler(EntryNotFound)
    async def kb_not_found(request: Request, exc: EntryNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(DocumentError)
    async def kb_invalid(request: Request, exc: DocumentError) -> JSONResponse:
        log.info("http.invalid_kb_entry", path=request.url.path, error=str(exc))
        where = ["body", "line", exc.line] if exc.line else ["body"]
        return JSONResponse(
            {"detail": [{"loc": where, "msg": exc.reason, "type": "invalid_entry"}]},
            status_code=422,
        )

    @app.exception_handler(SuggestionConflict)
    async def suggestion_conflict(request: Request, exc: SuggestionConflict) -> JSONResponse:
        log.info("http.suggestion_conflict", path=request.url.path, status=exc.status,
                 article_id=exc.article_id)
        return JSONResponse({"detail": exc.reason, "status": exc.status,
                             "article_id": exc.article_id}, status_code=409)

    @app.exception_handler(EmbeddingError)
    async def kb_embedding_error(request: Request, exc: EmbeddingError) -> JSONResponse:
        # the embedding provider is down or misbehaves: nothing was saved, try again later
        log.warning("http.embedding_failed", path=request.url.path, error=str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(KnowledgeError)
    async def kb_error(request: Request, exc: KnowledgeError) -> JSONResponse:
        log.warning("http.kb_error", path=request.url.path, error=str(exc))
        return _unprocessable(str(exc), "knowledge_error")


def _install_http_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 422 and isinstance(exc.detail, str):
            return _unprocessable(exc.detail, "invalid")  # the documented 422 shape
        return await http_exception_handler(request, exc)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={exc.next_url}", status_code=303)

    @app.exception_handler(PageForbidden)
    async def page_forbidden(request: Request, exc: PageForbidden) -> Response:
        log.info("http.page_forbidden", path=request.url.path, role=exc.principal.role.value,
                 user_id=str(exc.principal.id))
        return render(request, "forbidden.html", user=exc.principal, title="common.forbidden",
                      status_code=403)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        log.info("http.invalid_request", path=request.url.path, errors=errors)
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(InvalidPhoneNumber)
    async def invalid_phone(request: Request, exc: InvalidPhoneNumber) -> JSONResponse:
        log.info("http.invalid_phone", path=request.url.path, error=str(exc))
        return _unprocessable(f"invalid phone number: {exc.reason}", "invalid_phone")

    @app.exception_handler(InvalidMessage)
    async def invalid_message(request: Request, exc: InvalidMessage) -> JSONResponse:
        log.info("http.invalid_message", path=request.url.path, error=str(exc))
        return _unprocessable(str(exc), "invalid_message")

    @app.exception_handler(HandoffError)
    async def handoff_refused(request: Request, exc: HandoffError) -> JSONResponse:
        log.info("http.handoff_refused", path=request.url.path, code=exc.code, reason=exc.reason)
        if exc.status == 422:  # the documented shape of a 422 (found by schemathesis)
            return _unprocessable(exc.reason, exc.code)
        return JSONResponse({"detail": exc.reason, "code": exc.code}, status_code=exc.status)

    @app.exception_handler(InvalidUser)
    async def invalid_user(request: Request, exc: InvalidUser) -> JSONResponse:
        return _unprocessable(str(exc), "invalid_user")

    @app.exception_handler(UserExists)
    async def user_exists(request: Request, exc: UserExists) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)
    @app.exception_handler(WebhookTargetRefused)
    async def webhook_refused(request: Request, exc: WebhookTargetRefused) -> JSONResponse:
        log.info("http.webhook_refused", path=request.url.path, url=exc.url, reason=exc.reason)
        return _unprocessable(f"webhook refused: {exc.reason}", "webhook_refused")

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)


def _install_media_handlers(app: FastAPI) -> None:
    @app.exception_handler(MediaRejected)
    async def media_rejected(request: Request, exc: MediaRejected) -> JSONResponse:
        log.info("http.media_rejected", path=request.url.path, kind=exc.kind, reason=exc.reason)
        return _unprocessable(f"media rejected: {exc.reason}", "media_rejected")

    @app.exception_handler(AudioUnusable)
    async def audio_unusable(request: Request, exc: AudioUnusable) -> JSONResponse:
        log.info("http.audio_unusable", path=request.url.path, code=exc.code, reason=exc.reason)
        return _unprocessable(f"audio unusable: {exc.reason}", f"audio_{exc.code}")

    @app.exception_handler(MediaStoreError)
    async def media_store_down(request: Request, exc: MediaStoreError) -> JSONResponse:
        log.error("http.media_store_error", path=request.url.path, backend=exc.backend,
                  error=str(exc))
        return JSONResponse({"detail": f"media store unavailable ({exc.backend})"},
                            status_code=503)


def _install_campaign_handlers(app: FastAPI) -> None:
    @app.exception_handler(CampaignRejected)
    async def campaign_rejected(request: Request, exc: CampaignRejected) -> JSONResponse:
        log.info("http.campaign_rejected", path=request.url.path, reason=exc.reason)
        return JSONResponse(
            {
                "detail": [{"loc": ["body"], "msg": exc.reason, "type": "campaign_rejected"}],
                "rows": exc.details,
            },
            status_code=422,
        )

    @app.exception_handler(CampaignStateError)
    async def campaign_state(request: Request, exc: CampaignStateError) -> JSONResponse:
        log.info("http.campaign_state", path=request.url.path, error=str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=409)


def _install_sequence_handlers(app: FastAPI) -> None:
    @app.exception_handler(SequenceRejected)
    async def sequence_rejected(request: Request, exc: SequenceRejected) -> JSONResponse:
        log.info("http.sequence_rejected", path=request.url.path, reason=exc.reason)
        return JSONResponse(
            {
                "detail": [{"loc": ["body"], "msg": exc.reason, "type": "sequence_rejected"}],
                "rows": exc.details,
            },
            status_code=422,
        )

    @app.exception_handler(SequenceConflict)
    async def sequence_conflict(request: Request, exc: SequenceConflict) -> JSONResponse:
        log.info("http.sequence_conflict", path=request.url.path, code=exc.code,
                 reason=exc.reason, **{k: str(v) for k, v in exc.extra.items()})
        return JSONResponse({"detail": exc.reason, "code": exc.code, **exc.extra},
                            status_code=409)


def _unprocessable(reason: str, kind: str) -> JSONResponse:
    """A 422 in the documented shape (FastAPI's ``HTTPValidationError``), whoever raised it."""
    return JSONResponse(
        {"detail": [{"loc": ["body"], "msg": reason, "type": kind}]}, status_code=422
    )
