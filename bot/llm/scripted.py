"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 (tests, bench, demos).

It also answers OpenAI's ``/audio/transcriptions`` (the scripted text is the transcript).

It is real HTTP (a threaded stdlib server), so the chain is exercised through
litellm and httpx exactly as with a provider. Each request is answered by the
next scripted :class:`Behaviour` (or the default one): an answer, an HTTP error,
a 429 with ``Retry-After``, a hang, malformed JSON, or a function of the request
(to echo or "obey" a prompt injection).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any]], str]


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What the server does with one request."""

    kind: str  # answer | status | hang | malformed
    text: str | Reply = ""
    status: int = 200
    retry_after: float | None = None
    delay: float = 0.0

    @classmethod
    def answer(cls, text: str | Reply, *, delay: float = 0.0) -> Behaviour:
        return cls("answer", text=text, delay=delay)

    @classmethod
    def error(cls, status: int = 500) -> Behaviour:
        return cls("status", status=status)

    @classmethod
    def rate_limited(cls, retry_after: float = 1.0) -> Behaviour:
        return cls("status", status=429, retry_after=retry_after)

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Behaviour:
        return cls("hang", delay=seconds)

    @classmethod
    def malformed(cls) -> Behaviour:
        return cls("malformed")


@dataclass(slots=True)
class Received:
    """One request as the server saw it (recorded on arrival, timed when answered)."""

    body: dict[str, Any]
    authorization: str
    handled_seconds: float = 0.0


@dataclass
class ScriptedServer:
    """Start with :meth:`start` (or ``with``); ``url`` is the OpenAI ``api_base``."""

    default: Behaviour = field(default_factory=lambda: Behaviour.answer("ok"))
    by_key: dict[str, Behaviour] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    _script: deque[Behaviour] = field(default_factory=deque)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *behaviours: Behaviour) -> None:
        """Answer the next requests with ``behaviours`` in order, then with ``default``."""
        with self._lock:
            self._script.extend(behaviours)

    def next_behaviour(self, authorization: str) -> Behaviour:
        with self._lock:
            if self._script:
                return self._script.popleft()
        key = authorization.removeprefix("Bearer ").strip()
        return self.by_key.get(key, self.default)

    def record(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.received)

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> ScriptedServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # releases hanging handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def completion_body(text: str, model: str) -> dict[str, Any]:
    words = max(1, len(text.split()))
    return {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "service_tier": "default",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": words, "total_tokens": 50 + words},
    }


class _Handler(BaseHTTPRequestHandler):
    owner: ScriptedServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs (40 ms)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:  # noqa: N802
        self._send(200, json.dumps({"object": "list", "data": []}).encode())

    def do_POST(self) -> None:  # noqa: N802
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        auth = self.headers.get("Authorization", "")
        behaviour = self.owner.next_behaviour(auth)
        received = Received(body, auth)
        self.owner.record(received)
        try:
            self._act(behaviour, body, received, started)
        finally:
            received.handled_seconds = received.handled_seconds or (
                time.perf_counter() - started
            )

    def _act(
        self, behaviour: Behaviour, body: dict[str, Any], received: Received, started: float
    ) -> None:
        if behaviour.kind == "hang":
            self.owner._stop.wait(behaviour.delay)
            self.close_connection = True
            return
        if behaviour.delay:
            self.owner._stop.wait(behaviour.delay)
        if behaviour.kind == "malformed":
            self._send(200, b'{"id": "x", "choices": [{"message": {"content": "trunc')
            return
        if behaviour.kind == "status":
            headers = {}
            if behaviour.retry_after is not None:
                headers["Retry-After"] = f"{behaviour.retry_after:g}"
            error = {"error": {"message": f"scripted {behaviour.status}", "type": "scripted",
                               "code": behaviour.status}}
            self._send(behaviour.status, json.dumps(error).encode(), headers)
            return
        text = behaviour.text(body) if callable(behaviour.text) else behaviour.text
        if self.path.endswith("/audio/transcriptions"):  # multipart in, {"text"} out
            data = json.dumps({"text": text}).encode()
        else:
            data = json.dumps(completion_body(text, str(body.get("model", "scripted")))).encode()
        received.handled_seconds = time.perf_counter() - started  # before the client sees it
        self._send(200, data)

    def _send(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True



def _handler_for(owner: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    return type("ScriptedHandler", (_Handler,), {"owner": owner})


def main() -> None:
    """``python -m bot.llm.scripted [--status N | --answer TEXT]``: serve until stdin closes.

    Prints the ``api_base`` on the first line. A separate process keeps the provider
    off the measured process's GIL (the benchmark uses it).
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--answer", default="ok")
    parser.add_argument("--status", type=int, default=0)
    args = parser.parse_args()
    behaviour = Behaviour.error(args.status) if args.status else Behaviour.answer(args.answer)
    with ScriptedServer(default=behaviour) as server:
        sys.stdout.write(server.url + "\n")
        sys.stdout.flush()
        sys.stdin.read()  # until the parent closes our stdin (or dies)


if __name__ == "__main__":
    main()
