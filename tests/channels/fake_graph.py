"""A fake Graph API: a real HTTP server on 127.0.0.1 that records requests and answers
from a script (status, headers, JSON), like Meta would: messages, media info, media bytes,
and media uploads (``POST /{phone-number-id}/media``, multipart/form-data, parsed strictly).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from email.message import Message as MimeMessage
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Upload:
    """One multipart upload as Meta would see it."""

    fields: dict[str, str]
    filename: str
    content_type: str
    data: bytes


class BadUpload(ValueError):
    pass


def parse_upload(content_type: str, raw: bytes) -> Upload:
    """Parse a multipart/form-data body; refuse what Meta would refuse (400)."""
    if not content_type.startswith("multipart/form-data") or "boundary=" not in content_type:
        raise BadUpload(f"not multipart/form-data: {content_type!r}")
    parsed = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    if not parsed.is_multipart():
        raise BadUpload("no parts")
    fields: dict[str, str] = {}
    file: tuple[str, str, bytes] | None = None
    for part in parsed.iter_parts():
        assert isinstance(part, MimeMessage)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str) and isinstance(payload, bytes)
        filename = part.get_filename()
        if filename is not None:
            file = (filename, part.get_content_type(), payload)
        else:
            fields[name] = payload.decode()
    if file is None or fields.get("messaging_product") != "whatsapp" or "type" not in fields:
        raise BadUpload(f"missing file / messaging_product / type: {sorted(fields)}")
    return Upload(fields=fields, filename=file[0], content_type=file[1], data=file[2])


@dataclass
class FakeGraph:
    """Scripted answers are consumed first; then messages get a fresh ``wamid``."""

    requests: list[Recorded] = field(default_factory=list)
    script: deque[tuple[int, dict[str, str], Any]] = field(default_factory=deque)
    media: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id -> (mime, bytes)
    uploads: dict[str, Upload] = field(default_factory=dict)  # media id -> upload
    counter: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v21.0"

    def upload_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/media")]

    def sends(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/messages")]

    def answer(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        path = handler.path.split("?")[0]
        content_type = handler.headers.get("content-type") or ""
        if method == "POST" and path.endswith("/media"):
            return self._upload(handler, path, content_type, raw)
        body = json.loads(raw) if raw else None
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

    def _upload(
        self, handler: BaseHTTPRequestHandler, path: str, content_type: str, raw: bytes
    ) -> None:
        try:
            upload: Upload | None = parse_upload(content_type, raw)
        except BadUpload as exc:
            upload = None
            reason = str(exc)
        self.requests.append(Recorded("POST", path, dict(handler.headers.items()), upload))
        if self.script:
            status, headers, payload = self.script.popleft()
            return self._send(handler, status, headers, payload)
        if upload is None:
            return self._send(handler, 400, {}, {"error": {"code": 100, "message": reason}})
        self.counter += 1
        media_id = f"{9000000000 + self.counter}"
        self.uploads[media_id] = upload
        return self._send(handler, 200, {}, {"id": media_id})

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
