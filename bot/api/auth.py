"""Authentication at the HTTP edge: bearer tokens for the API, a session cookie for pages.

``require_role(*roles)`` is the one dependency every protected endpoint uses:
401 without a valid token, 403 when the role is not allowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status

from bot.api.clientip import client_ip
from bot.api.deps import RuntimeDep
from handoff.apikeys import is_api_key
from handoff.audit import Actor
from handoff.auth import Principal
from handoff.roles import Role

if TYPE_CHECKING:
    from bot.wiring.runtime import Runtime

SESSION_COOKIE = "atiende_session"

__all__ = [
    "SESSION_COOKIE",
    "AdminDep",
    "LoginRequired",
    "PageForbidden",
    "OptionalUser",
    "PageAdmin",
    "PageSupervisor",
    "PageUser",
    "Principal",
    "Role",
    "StaffDep",
    "SupervisorDep",
    "require_page_role",
    "require_role",
]


class PageForbidden(Exception):
    """A signed-in user opened a page their role may not see; the app answers with a page."""

    def __init__(self, principal: Principal) -> None:
        super().__init__(principal.role.value)
        self.principal = principal


class LoginRequired(Exception):
    """A page needs a login; the app answers with a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(SESSION_COOKIE)


def request_client(request: Request, runtime: Runtime) -> str:
    """The client IP (``X-Forwarded-For`` only from ``ATIENDE_TRUSTED_PROXIES``)."""
    return client_ip(request, runtime.settings.trusted_proxy_networks)


async def current_principal(request: Request, runtime: RuntimeDep) -> Principal | None:
    """The caller behind a login token or API key (with the client IP), or None."""
    token = _token(request)
    if not token:
        return None
    if is_api_key(token):
        principal = await runtime.api_keys.resolve(token)
    else:
        principal = await runtime.auth.resolve(token)
    if principal is None:
        return None
    return dataclasses.replace(principal, client=request_client(request, runtime))


def require_role(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the caller, who must be logged in with one of ``roles`` (any if none)."""

    async def dependency(
        principal: Annotated[Principal | None, Depends(current_principal)],
    ) -> Principal:
        if principal is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "login required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if roles and principal.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {principal.role.value} may not do this",
            )
        return principal

    return dependency


def require_page_role(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """Like ``require_role`` for HTML pages: redirects to /login instead of 401."""

    async def dependency(
        request: Request,
        principal: Annotated[Principal | None, Depends(current_principal)],
    ) -> Principal:
        if principal is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(quote(target, safe="/?=&"))
        if roles and principal.role not in roles:
            raise PageForbidden(principal)
        return principal

    return dependency


AdminDep = Annotated[Principal, Depends(require_role(Role.ADMIN))]
SupervisorDep = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.SUPERVISOR))]
StaffDep = Annotated[Principal, Depends(require_role())]
PageUser = Annotated[Principal, Depends(require_page_role())]
PageSupervisor = Annotated[Principal, Depends(require_page_role(Role.ADMIN, Role.SUPERVISOR))]
PageAdmin = Annotated[Principal, Depends(require_page_role(Role.ADMIN))]
OptionalUser = Annotated[Principal | None, Depends(current_principal)]


async def audit(
    runtime: Runtime, who: Principal, action: str, target: str | None = None, **details: Any
) -> None:
    """Record an admin or agent action that has just succeeded (``handoff.audit``)."""
    await runtime.audit.record(Actor.of(who), action, target, details)
