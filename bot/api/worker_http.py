"""The worker's own small HTTP endpoint: ``GET /healthz`` and ``GET /metrics``.

``atiende worker`` serves no API, but an orchestrator must see whether it is alive and
Prometheus must scrape its metrics (processing time, intents, escalations, failures,
LLM calls live in the worker's registry, not the app's). A plain asyncio server: two
read-only paths, nothing else, so it needs no web framework in the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from prometheus_client import CONTENT_TYPE_LATEST

from bot.api.routes.health import component_health, health_body, render_metrics
from bot.logs import get_logger
from bot.wiring.runtime import Runtime

log = get_logger("atiende.worker_http")
MAX_REQUEST_LINE = 2048
END_OF_HEADERS = (b"\r\n", b"\n", b"")


class WorkerHttp:
    """Serves the worker's health (database, Redis, its own tasks) and metrics."""

    def __init__(self, runtime: Runtime, *, host: str, port: int) -> None:
        self._runtime = runtime
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        log.info("worker_http.listening", host=self._host, port=self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            while await asyncio.wait_for(reader.readline(), timeout=5) not in END_OF_HEADERS:
                pass  # headers: nothing here depends on them
            status, content_type, body = await self._answer(line[:MAX_REQUEST_LINE])
            writer.write(
                f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass  # a client that went away or never finished its request
        finally:
            writer.close()

    async def _answer(self, line: bytes) -> tuple[str, str, bytes]:
        parts = line.decode("latin-1").split()
        if len(parts) < 2 or parts[0] != "GET":
            return "405 Method Not Allowed", "text/plain", b"only GET /healthz and /metrics\n"
        path = parts[1].split("?", 1)[0]
        if path == "/healthz":
            components = await component_health(self._runtime)
            dead = self._runtime.dead_tasks()
            components["worker"] = "ok" if not dead else f"down: {', '.join(dead)} ended"
            body, healthy = health_body(components)
            status = "200 OK" if healthy else "503 Service Unavailable"
            return status, "application/json", json.dumps(body).encode()
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, await render_metrics(self._runtime)
        return "404 Not Found", "text/plain", b"not found\n"
