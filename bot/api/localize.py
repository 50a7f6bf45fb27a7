"""API errors in the user's language: one ASGI middleware rewrites the ``detail`` of error
responses (status >= 400, JSON) for callers who ask for Spanish, with the patterns of the
``errors`` page catalog (``bot/api/texts/errors.json``: English pattern -> text).

The language is the ``atiende_lang`` cookie of the pages, else ``Accept-Language``; API
clients that ask for neither keep the English reasons.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.api.pages import LANG_COOKIE, LANGUAGES, PageTexts


class ErrorTranslator:
    """English reasons to another language, by the catalog's patterns (first match wins)."""

    def __init__(self, texts: PageTexts) -> None:
        area = texts.areas.get("errors", {})
        self._patterns = {
            lang: [(re.compile(p), t) for p, t in area.get(lang, {}).items()]
            for lang in LANGUAGES
        }

    def text(self, message: str, lang: str) -> str:
        for pattern, template in self._patterns.get(lang, []):
            found = pattern.match(message)
            if found:
                return str(template.format(**found.groupdict()))
        return message

    def detail(self, detail: Any, lang: str) -> Any:
        if isinstance(detail, str):
            return self.text(detail, lang)
        if isinstance(detail, list):
            return [
                {**d, "msg": self.text(str(d.get("msg", "")), lang)} if isinstance(d, dict) else d
                for d in detail
            ]
        return detail


def _lang(scope: Scope) -> str:
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == LANG_COOKIE and value in LANGUAGES:
            return str(value)
    first = str(headers.get("accept-language", "")).split(",")[0].strip().lower()[:2]
    return first if first in LANGUAGES else "en"


class LocalizedErrors:
    """ASGI middleware: translate error bodies; everything else streams through untouched."""

    def __init__(self, app: ASGIApp, translator: ErrorTranslator) -> None:
        self.app = app
        self.translator = translator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _lang(scope) == "en":
            await self.app(scope, receive, send)
            return
        lang = _lang(scope)
        start: Message | None = None
        chunks: list[bytes] = []

        async def wrapped(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                is_json = headers.get(b"content-type", b"").startswith(b"application/json")
                if message["status"] >= 400 and is_json:
                    start = message
                    return
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                await self._send_translated(send, start, b"".join(chunks), lang)
                return
            await send(message)

        await self.app(scope, receive, wrapped)

    async def _send_translated(self, send: Send, start: Message, body: bytes, lang: str) -> None:
        try:
            data = json.loads(body)
            if isinstance(data, dict) and "detail" in data:
                data["detail"] = self.translator.detail(data["detail"], lang)
                body = json.dumps(data, ensure_ascii=False).encode()
        except ValueError:
            pass
        headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})
