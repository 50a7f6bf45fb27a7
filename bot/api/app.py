"""The FastAPI application factory (the HTTP half of the composition root)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from bot.api.auth import LoginRequired
from bot.api.routes import auth, campaigns, health, inbox, llm, media, simulator
from bot.container import Runtime
from bot.errors import (
    CampaignRejected,
    CampaignStateError,
    InvalidMessage,
    InvalidPhoneNumber,
    MediaRejected,
    NotFound,
)
from bot.logs import get_logger
from handoff.auth import InvalidUser, UserExists
from handoff.errors import HandoffError

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"
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
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(auth.pages)
    app.include_router(simulator.router)
    app.include_router(simulator.pages)
    app.include_router(inbox.router)
    app.include_router(inbox.pages)
    app.include_router(media.router)
    app.include_router(campaigns.router)
    app.include_router(campaigns.pages)
    app.include_router(llm.router)
    app.include_router(llm.pages)
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={exc.next_url}", status_code=303)

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
        return JSONResponse({"detail": f"invalid phone number: {exc.reason}"}, status_code=422)

    @app.exception_handler(InvalidMessage)
    async def invalid_message(request: Request, exc: InvalidMessage) -> JSONResponse:
        log.info("http.invalid_message", path=request.url.path, error=str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(HandoffError)
    async def handoff_refused(request: Request, exc: HandoffError) -> JSONResponse:
        log.info("http.handoff_refused", path=request.url.path, code=exc.code, reason=exc.reason)
        return JSONResponse({"detail": exc.reason, "code": exc.code}, status_code=exc.status)

    @app.exception_handler(InvalidUser)
    async def invalid_user(request: Request, exc: InvalidUser) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(UserExists)
    async def user_exists(request: Request, exc: UserExists) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)
    @app.exception_handler(MediaRejected)
    async def media_rejected(request: Request, exc: MediaRejected) -> JSONResponse:
        log.info("http.media_rejected", path=request.url.path, kind=exc.kind, reason=exc.reason)
        return JSONResponse({"detail": f"media rejected: {exc.reason}"}, status_code=422)

    @app.exception_handler(CampaignRejected)
    async def campaign_rejected(request: Request, exc: CampaignRejected) -> JSONResponse:
        log.info("http.campaign_rejected", path=request.url.path, reason=exc.reason)
        return JSONResponse({"detail": exc.reason, "rows": exc.details}, status_code=422)

    @app.exception_handler(CampaignStateError)
    async def campaign_state(request: Request, exc: CampaignStateError) -> JSONResponse:
        log.info("http.campaign_state", path=request.url.path, error=str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)
