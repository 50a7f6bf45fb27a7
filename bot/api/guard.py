"""The HTTP edge's guard (one ASGI middleware, before any route reads anything):

- body limits: a declared ``Content-Length`` over the route's limit is answered 413
  without reading; a streamed body is counted as it arrives and cut off at the limit
  (multipart too, before it is spooled);
- invalid text: a NUL byte in the path, the query or a JSON/form body is a 422 with a
  reason (PostgreSQL cannot store it); the log line holds the path, never the text;
- cross-site requests: a state-changing request that a browser sends from another origin
  (``Sec-Fetch-Site`` or ``Origin``) is refused, and one authenticated by the session
  cookie needs the page's CSRF token (``X-CSRF-Token``); bearer tokens are unaffected;
- security headers on every response (CSP without inline script on pages,
  ``frame-ancestors 'none'``, nosniff, Referrer-Policy, ``no-store`` on private ones).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes, urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.api.auth import SESSION_COOKIE
from bot.logs import get_logger
from bot.settings import Settings, parse_networks
from handoff.apikeys import is_api_key

if TYPE_CHECKING:
    from bot.wiring.runtime import Runtime

log = get_logger("atiende.api.guard")

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# the handler itself checks the form's csrf_token (an HTML form cannot send headers)
FORM_CHECKED = frozenset({"/logout", "/login"})
_TEXT_BODIES = ("application/json", "application/x-www-form-urlencoded", "text/")
_UPLOAD_SUFFIXES = ("/attachments", "/voice")
_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:{media}; "
    "media-src 'self' blob:{media}; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
_DOCS = ("/docs", "/redoc", "/openapi.json")
Refusal = tuple[int, str, str] | None  # status, reason, code


def csrf_token(settings: Settings, session: str) -> str:
    """The session's CSRF token (synchronizer, derived: nothing stored)."""
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, b"csrf|" + session.encode(), hashlib.sha256).hexdigest()[:40]


def csrf_ok(settings: Settings, session: str | None, token: str | None) -> bool:
    return bool(session and token) and hmac.compare_digest(
        csrf_token(settings, session or ""), token or "")


def body_limit(path: str, settings: Settings) -> int:
    """The most bytes a request to ``path`` may send."""
    sec = settings.security
    if path.startswith("/webhooks/"):
        return sec.webhook_max_bytes
    if path.endswith(_UPLOAD_SUFFIXES):
        largest = max(limit.max_bytes for limit in settings.media.limits.values())
        return largest + 256 * 1024  # the multipart envelope and fields
    if path == "/api/v1/kb/import":
        return sec.upload_max_bytes
    if path == "/api/v1/contact-lists":
        return settings.campaigns.max_csv_bytes + 256 * 1024
    return sec.max_body_bytes


class RequestGuard:
    """ASGI middleware: limits, NUL bytes, cross-site refusals and security headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = _settings(scope)
        headers = Headers(scope=scope)
        send = _with_headers(send, scope["path"], settings)
        refusal = (_invalid_text(scope) or _cross_site(scope, headers, settings)
                   or await _limited(scope, headers, settings))
        if refusal is not None:
            await _answer(send, *refusal)
            return
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"], settings)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            log.info("http.body_too_large", path=scope["path"], declared=int(declared),
                     limit=limit)
            await _answer(send, 413, f"the body is larger than {limit} bytes", "too_large")
            return
        if headers.get("content-type", "").startswith(_TEXT_BODIES):
            body = await _read_bounded(receive, limit)
            if body is None:
                await _answer(send, 413, f"the body is larger than {limit} bytes", "too_large")
                return
            if b"\x00" in body or b"\\u0000" in body:
                log.info("http.nul_byte", path=scope["path"], where="body")
                await _answer(send, 422, "the text contains a NUL byte", "invalid_text")
                return
            receive = _replay(body)
        else:
            receive = _counted(receive, limit)
        await self.app(scope, receive, send)


def _settings(scope: Scope) -> Settings:
    app = scope.get("app")
    runtime: Runtime | None = getattr(getattr(app, "state", None), "runtime", None)
    return runtime.settings if runtime is not None else Settings()


def _invalid_text(scope: Scope) -> Refusal:
    raw_path = scope.get("raw_path") or scope["path"].encode()
    if b"\x00" in unquote_to_bytes(raw_path) or b"\x00" in unquote_to_bytes(
        scope.get("query_string", b"")
    ):
        log.info("http.nul_byte", path=scope["path"].replace("\x00", "?"), where="url")
        return 422, "the address contains a NUL byte", "invalid_text"
    return None


def _cross_site(scope: Scope, headers: Headers, settings: Settings) -> Refusal:
    path = scope["path"]
    if scope["method"] in SAFE_METHODS or path.startswith("/webhooks/"):
        return None
    if headers.get("authorization", "").lower().startswith("bearer "):
        return None  # not sent by a browser on its own: no CSRF possible
    site = headers.get("sec-fetch-site")
    origin = headers.get("origin")
    if (site is not None and site not in ("same-origin", "none")) or (
        origin is not None and not _same_origin(origin, headers, settings)
    ):
        log.info("http.cross_site_refused", path=path, origin=origin, site=site)
        return 403, "cross-site request refused", "cross_site"
    session = _cookie(headers, SESSION_COOKIE)
    if session and path not in FORM_CHECKED and not csrf_ok(
        settings, session, headers.get(CSRF_HEADER)
    ):
        log.info("http.csrf_refused", path=path)
        return 403, "missing or wrong CSRF token: reload the page", "csrf"
    return None


async def _limited(scope: Scope, headers: Headers, settings: Settings) -> Refusal:
    """/metrics and /docs for staff or an allow-list only, when the settings say so."""
    path = scope["path"]
    rule = (settings.security.metrics_allow if path == "/metrics"
            else settings.security.docs_allow if path.startswith(_DOCS) else "")
    if not rule.strip():
        return None
    if rule.strip() != "staff":
        client = (scope.get("client") or ("", 0))[0]
        try:
            address = ipaddress.ip_address(client)
            if any(address in network for network in parse_networks(rule)):
                return None
        except ValueError:
            pass
    runtime = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
    token = headers.get("authorization", "")[7:].strip() if headers.get(
        "authorization", "").lower().startswith("bearer ") else _cookie(headers, SESSION_COOKIE)
    if runtime is not None and token:
        resolver = runtime.api_keys if is_api_key(token) else runtime.auth
        if await resolver.resolve(token) is not None:
            return None
    log.info("http.limited_refused", path=path)
    return 401, "login required", "login"


def _same_origin(origin: str, headers: Headers, settings: Settings) -> bool:
    allowed = {o.strip().rstrip("/") for o in settings.security.allowed_origins.split(",")
               if o.strip()}
    if origin.rstrip("/") in allowed:
        return True
    parts = urlsplit(origin)
    return bool(parts.netloc) and parts.netloc == headers.get("host", "")


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


async def _read_bounded(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _counted(receive: Receive, limit: int) -> Receive:
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        size += len(message.get("body", b""))
        if size > limit:  # FastAPI passes an HTTPException from the body read through
            raise HTTPException(413, f"the body is larger than {limit} bytes")
        return message

    return counted


async def _answer(send: Send, status: int, reason: str, code: str) -> None:
    detail: Any = reason
    if status == 422:
        detail = [{"loc": ["body"], "msg": reason, "type": code}]
    body = json.dumps({"detail": detail, "code": code}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _with_headers(send: Send, path: str, settings: Settings) -> Send:
    media = ""
    if settings.media.backend == "s3" and settings.media.s3_endpoint_url:
        parts = urlsplit(settings.media.s3_endpoint_url)
        media = f" {parts.scheme}://{parts.netloc}"

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
            html = content_type.startswith(b"text/html")
            extra: list[tuple[bytes, bytes]] = [
                (b"x-content-type-options", b"nosniff"),
                (b"referrer-policy", b"same-origin"),
                (b"x-frame-options", b"DENY"),
            ]
            if path.startswith(_DOCS):  # Swagger UI's own scripts: framing refused only
                extra.append((b"content-security-policy", b"frame-ancestors 'none'"))
            else:
                csp = _PAGE_CSP.format(media=media) if html else _API_CSP
                extra.append((b"content-security-policy", csp.encode()))
            if not path.startswith("/static/") and (html or path.startswith("/api/")):
                extra.append((b"cache-control", b"no-store"))
            headers.extend((k, v) for k, v in extra if k not in present)
            message = {**message, "headers": headers}
        await send(message)

    return sending


__all__ = ["CSRF_FIELD", "CSRF_HEADER", "RequestGuard", "body_limit", "csrf_ok", "csrf_token"]
