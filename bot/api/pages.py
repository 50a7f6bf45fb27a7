"""The pages' shell: one layout, navigation by role, the page texts (one i18n mechanism).

Every page is a Jinja template extending ``layout.html`` plus one static ES module; its
texts come from the catalogs in ``bot/api/texts/*.json`` (``{"es": {...}, "en": {...}}``,
one file per area, keys used as ``area.key``). The server renders the static texts in the
user's language and hands the page's catalogs to its script as a JSON data block, so
templates and scripts read the same catalog. The language is the ``atiende_lang`` cookie
(set by the selector in the header), else Spanish, whatever the browser's own setting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from bot.api.auth import SESSION_COOKIE
from bot.api.guard import csrf_token
from handoff.auth import Principal
from handoff.roles import Role

LANG_COOKIE = "atiende_lang"
LANGUAGES = ("es", "en")
TEXTS_DIR = Path(__file__).resolve().parent / "texts"
LOCALES = {"es": "es-MX", "en": "en-US"}


@dataclass(frozen=True, slots=True)
class NavItem:
    key: str  # text key in the "nav" catalog
    href: str
    roles: frozenset[Role]


_ALL = frozenset(Role)
_SUP = frozenset({Role.ADMIN, Role.SUPERVISOR})
_ADMIN = frozenset({Role.ADMIN})

NAV: tuple[NavItem, ...] = (
    NavItem("inbox", "/inbox", _ALL),
    NavItem("dashboard", "/dashboard", _SUP),
    NavItem("team", "/admin/teams", _SUP),
    NavItem("canned", "/admin/canned", _SUP),
    NavItem("users", "/admin/users", _ADMIN),
    NavItem("hours", "/admin/hours", _ADMIN),
    NavItem("kb", "/admin/kb", _ADMIN),
    NavItem("campaigns", "/admin/campaigns", _SUP),
    NavItem("sequences", "/admin/sequences", _SUP),
    NavItem("whatsapp", "/admin/whatsapp", _ADMIN),
    NavItem("llm", "/admin/llm", _ADMIN),
    NavItem("analytics", "/admin/analytics", _ADMIN),
    NavItem("audit", "/admin/audit", _ADMIN),
    NavItem("contacts", "/admin/contacts", _ADMIN),
)

HOME = {Role.AGENT: "/inbox", Role.SUPERVISOR: "/dashboard", Role.ADMIN: "/dashboard"}


def home_of(role: Role) -> str:
    """The page a role lands on after signing in (and at ``/``)."""
    return HOME[role]


def nav_for(role: Role | None) -> list[NavItem]:
    return [item for item in NAV if role is not None and role in item.roles]


class PageTexts:
    """The page catalogs, Spanish and English, read once when the app is built."""

    def __init__(self, directory: Path = TEXTS_DIR) -> None:
        self._texts: dict[str, dict[str, dict[str, str]]] = {}
        for path in sorted(directory.glob("*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            self._texts[path.stem] = {lang: dict(data[lang]) for lang in LANGUAGES}

    @property
    def areas(self) -> dict[str, dict[str, dict[str, str]]]:
        return self._texts

    def text(self, lang: str, key: str, **params: Any) -> str:
        area, _, name = key.partition(".")
        catalog = self._texts.get(area, {})
        found = catalog.get(lang, {}).get(name) or catalog.get("es", {}).get(name) or key
        return found.format(**params) if params else found

    def bundle(self, lang: str, areas: Sequence[str]) -> dict[str, str]:
        """The flat ``area.key -> text`` catalog a page's script needs."""
        return {
            f"{area}.{name}": text
            for area in ("common", "nav", *areas)
            for name, text in self._texts.get(area, {}).get(lang, {}).items()
        }


def request_lang(request: Request) -> str:
    """The page language: the selector's cookie, else Spanish (the businesses' language,
    whatever the browser's own setting)."""
    chosen = request.cookies.get(LANG_COOKIE, "")
    return chosen if chosen in LANGUAGES else "es"


def api_lang(request: Request) -> str:
    """The language an API caller reads: the pages' cookie, else ``Accept-Language``,
    else Spanish."""
    chosen = request.cookies.get(LANG_COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    first = request.headers.get("accept-language", "").split(",")[0].strip().lower()[:2]
    return first if first in LANGUAGES else "es"


def render(
    request: Request,
    template: str,
    *,
    user: Principal | None,
    areas: Sequence[str] = (),
    title: str = "",
    script: str | None = None,
    context: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A page in the shared layout: navigation for ``user``'s role, texts in their language,
    the page's catalogs (``areas``) for ``script`` (a module under /static/js/pages)."""
    texts: PageTexts = request.app.state.texts
    lang = request_lang(request)

    def t(key: str, **params: Any) -> str:
        return texts.text(lang, key, **params)

    bundle = json.dumps(texts.bundle(lang, areas), ensure_ascii=False)
    # "<" escaped so customer or admin text can never close the data block
    data = Markup(bundle.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    role = user.role if user is not None else None
    session = request.cookies.get(SESSION_COOKIE)
    values = {
        "csrf": csrf_token(request.app.state.runtime.settings, session) if session else "",
        "t": t, "lang": lang, "locale": LOCALES[lang], "user": user,
        "nav": nav_for(role), "path": request.url.path, "title": t(title) if title else "",
        "script": script, "i18n_data": data,
        "simulator": _simulator_on(request), "number": _number,
        **(context or {}),
    }
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, template, values, status_code=status_code
    )
    return response


def _number(value: float | int | None) -> str:
    """A count as es-MX and en-US both write it (1,234); dates are formatted in the
    browser (``<time data-format>``, shell.js) in the reader's own time zone."""
    return "—" if value is None else f"{value:,}"


def _simulator_on(request: Request) -> bool:
    runtime = getattr(request.app.state, "runtime", None)
    return bool(runtime is not None and runtime.settings.simulator_enabled)


__all__ = [
    "HOME", "LANG_COOKIE", "LANGUAGES", "NAV", "NavItem", "PageTexts", "api_lang", "home_of",
    "nav_for",
    "render", "request_lang",
]
