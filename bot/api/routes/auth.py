"""Login and logout: JSON for the API, a form and a cookie for the pages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from bot.api.auth import SESSION_COOKIE, StaffDep, request_client
from bot.api.deps import RuntimeDep
from bot.api.guard import CSRF_FIELD, csrf_ok
from bot.api.pages import render
from bot.wiring.runtime import Runtime
from handoff.audit import Actor
from handoff.auth import AuthError, IssuedToken, LoginThrottled, UnknownUser

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
pages = APIRouter(include_in_schema=False)


class LoginRequest(BaseModel):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=200)


class UserPublic(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: str


class LoginResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    user: UserPublic


def _client(request: Request) -> str:
    return request_client(request, request.app.state.runtime)


def _throttled(exc: LoginThrottled) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(exc.retry_after)}
    )


@router.post("/login", response_model=LoginResponse)
async def login(body: LoginRequest, request: Request, runtime: RuntimeDep) -> LoginResponse:
    """Email and password → a bearer token (failed attempts are rate-limited)."""
    try:
        issued = await _audited_login(runtime, body.email, body.password, _client(request))
    except LoginThrottled as exc:
        raise _throttled(exc) from exc
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from exc
    return _login_response(issued)


async def _audited_login(runtime: Runtime, email: str, password: str, client: str) -> IssuedToken:
    """Log in and record the attempt in the audit log (success, failure, throttled)."""
    try:
        issued = await runtime.auth.login(email, password, client=client)
    except AuthError as exc:
        action = "auth.login_throttled" if isinstance(exc, LoginThrottled) else "auth.login_failed"
        actor = Actor.anonymous(email=email.strip().lower()[:254], client=client)
        await runtime.audit.record(actor, action)
        raise
    p = issued.principal
    await runtime.audit.record(Actor.of(p, client=client), "auth.login", f"user:{p.id}")
    return issued


def _login_response(issued: IssuedToken) -> LoginResponse:
    p = issued.principal
    return LoginResponse(
        access_token=issued.token, expires_at=issued.expires_at,
        user=UserPublic(id=p.id, email=p.email, name=p.name, role=p.role.value),
    )


@router.get("/me", response_model=UserPublic)
async def me(principal: StaffDep) -> UserPublic:
    return UserPublic(
        id=principal.id, email=principal.email, name=principal.name, role=principal.role.value
    )


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=8, max_length=200)


@router.post("/password", status_code=204)
async def change_password(
    body: PasswordChange, request: Request, runtime: RuntimeDep, principal: StaffDep
) -> Response:
    """Change your own password; every session of yours (this one too) is revoked."""
    try:
        revoked = await runtime.auth.change_password(
            principal.id, current=body.current_password, new=body.new_password
        )
    except AuthError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except UnknownUser as exc:  # an API key has no password
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this caller has no password") from exc
    await runtime.audit.record(Actor.of(principal), "users.password_change",
                               f"user:{principal.id}", {"sessions_revoked": revoked})
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/logout", status_code=204)
async def logout(request: Request, runtime: RuntimeDep, principal: StaffDep) -> Response:
    token = request.headers.get("authorization", "")[7:] or request.cookies.get(SESSION_COOKIE)
    if token:
        await runtime.auth.logout(token)
    await runtime.audit.record(
        Actor.of(principal, client=_client(request)), "auth.logout", f"user:{principal.id}"
    )
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/logout-everywhere", status_code=204)
async def logout_everywhere(
    request: Request, runtime: RuntimeDep, principal: StaffDep
) -> Response:
    """End every session of the caller (every browser and phone, this one too)."""
    revoked = await runtime.auth.revoke_sessions(principal.id)
    await runtime.audit.record(Actor.of(principal, client=_client(request)),
                               "auth.logout_everywhere", f"user:{principal.id}",
                               {"sessions_revoked": revoked})
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    return response


@pages.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", user=None, title="nav.login",
                  context={"next": _safe_next(next), "error": None})


@pages.post("/login", response_class=HTMLResponse)
async def login_form(
    request: Request,
    runtime: RuntimeDep,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    try:
        issued = await _audited_login(runtime, email, password, _client(request))
    except AuthError as exc:
        code = 429 if isinstance(exc, LoginThrottled) else 401
        return render(request, "login.html", user=None, title="nav.login",
                      context={"next": _safe_next(next), "error": code}, status_code=code)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE, issued.token, httponly=True, samesite="strict",
        secure=runtime.settings.env == "production",
        max_age=int((issued.expires_at - runtime.clock()).total_seconds()),
    )
    return response


@pages.post("/logout")
async def logout_form(
    request: Request, runtime: RuntimeDep,
    csrf: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token and not csrf_ok(runtime.settings, token, csrf):
        # a page elsewhere cannot sign the user out; the form of our own pages can
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    if token:
        await runtime.auth.logout(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _safe_next(target: str) -> str:
    """Only same-site paths (no open redirects)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target

