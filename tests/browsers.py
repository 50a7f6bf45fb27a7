"""What the browser tests share: Debian's Chromium under Playwright, and the app served on
a 127.0.0.1 port under uvicorn for it."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import uvicorn
from playwright.async_api import Browser, async_playwright

from bot.api import create_app
from bot.wiring.runtime import Runtime

CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium, closed afterwards."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def serve(
    runtime: Runtime, *, worker: bool, lifespan: Literal["auto", "on", "off"] = "auto",
    port: int = 0, attempts: int = 200, stop_seconds: float = 15,
) -> AsyncIterator[str]:
    """The app around ``runtime`` under uvicorn (``port`` 0: any free one); yields its
    base URL. With ``lifespan="off"`` the caller owns (and closes) the runtime."""
    async def factory() -> Runtime:
        return runtime

    app = create_app(factory, run_worker=worker)
    if lifespan == "off":
        app.state.runtime = runtime  # no lifespan sets it
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=2, lifespan=lifespan,
    ))
    task = asyncio.create_task(server.serve())
    for _ in range(attempts):
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, stop_seconds)
