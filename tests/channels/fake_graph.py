"""A fake Graph API: a real HTTP server on 127.0.0.1 that records requests and answers
from a script (status, headers, JSON), like Meta would: messages, media info, media bytes.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGraph:
    """Scripted answers are consumed first; then messages get a fresh ``wamid``."""

    requests: list[Recorded] = field(default_factory=list)
    script: deque[tuple[int, dict[str, str], Any]] = field(default_factory=deque)
    media: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id -> (mime, bytes)
    counter: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v21.0"

    def sends(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/messages")]

    def answer(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = handler.path.split("?")[0]
        self.requests.append(Recorded(method, path, dict(handler.headers.items()), body))
        if path.startswith("/files/"):
            media_id = path.removeprefix("/files/")
            if media_id not in self.media:
                return self._send(handler, 404, {}, {"error": {"message": "gone"}})
            mime, data = self.media[media_id]
            handler.send_response(200)
            handler.send_header("content-type", mime)
            handler.send_header("content-length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
            return None
        if self.script:
            status, headers, payload = self.script.popleft()
            return self._send(handler, status, headers, payload)
        if method == "GET":
            media_id = path.rsplit("/", 1)[-1]
            if media_id not in self.media:
                return self._send(handler, 404, {}, {"error": {"code": 100, "message": "no"}})
            mime, data = self.media[media_id]
            host, port = handler.server.server_address[:2]
            return self._send(handler, 200, {}, {
                "url": f"http://{host!s}:{port}/files/{media_id}", "mime_type": mime,
                "sha256": "x", "file_size": len(data), "id": media_id,
                "messaging_product": "whatsapp",
            })
        self.counter += 1
        to = (body or {}).get("to", "")
        return self._send(handler, 200, {}, {
            "messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": f"wamid.fake{self.counter}"}],
        })

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: Any
    ) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        for k, v in headers.items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(data)

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake.answer(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake.answer(self, "POST")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
