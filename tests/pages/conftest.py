"""Page tests in a real headless Chromium (Playwright driving /usr/bin/chromium).

One browser, one database, one runtime and one live app server per test module (the
suite's time matters); each test uses its own staff accounts and customers. Every page a
test visits can be checked with axe-core (``tests/vendor/axe-*.min.js``, pinned, MPL-2.0),
loaded into each page by the context, never from a CDN.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from playwright.async_api import Browser, BrowserContext, Page

from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.config import HandoffConfig
from handoff.roles import Role
from knowledge.embeddings import Embedder
from tests.browsers import CHROMIUM, chromium, serve
from tests.conftest import make_database

AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-4.14.1.min.js"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "pages"
PASSWORD = "clave-larga-123"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")


@pytest.fixture(scope="module")
def module_database(pg_admin_url: str) -> Any:
    url = make_database(pg_admin_url)
    yield url
    name = url.split("/")[3].split("?")[0]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        env="test", data_dir=tmp_path_factory.mktemp("pages"), stalled_job_seconds=2,
        reconcile_interval_seconds=0.5, job_retry_base_seconds=1, worker_concurrency=4,
        log_level="WARNING", handoff=HandoffConfig(hours=""),
    )


@pytest.fixture(scope="module")
async def live(
    module_settings: Settings, module_database: str, services: Any, kb_embedder: Embedder
) -> AsyncIterator[tuple[str, Runtime]]:
    """The app (with its worker) on a free 127.0.0.1 port, and its runtime."""
    import redis

    client = redis.Redis(unix_socket_path=str(services.redis.socket))
    client.flushall()
    client.close()
    runtime = await Runtime.create(module_settings, database_url=module_database,
                                   redis_url=services.redis.url, embedder=kb_embedder)

    async with serve(runtime, worker=True, lifespan="on", attempts=400,
                     stop_seconds=20) as base:
        yield base, runtime


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def new_user(runtime: Runtime, role: str, name: str | None = None) -> str:
    email = f"{role}-{uuid.uuid4().hex[:8]}@seguros.mx"
    await runtime.auth.create_user(email=email, name=name or role.title(), role=Role(role),
                                   password=PASSWORD)
    return email


async def open_context(browser: Browser, *, phone: bool = False, lang: str | None = None
                       ) -> BrowserContext:
    # bypass_csp: wait_for_function evaluates strings, which the CSP forbids (tests/security
    # drives the pages under the real CSP)
    context = await browser.new_context(viewport=PHONE if phone else DESKTOP,
                                        is_mobile=phone, has_touch=phone, bypass_csp=True)
    await context.add_init_script(path=str(AXE))
    if lang:
        await context.add_cookies([{"name": "atiende_lang", "value": lang,
                                    "url": "http://127.0.0.1"}])
    return context


async def sign_in(browser: Browser, base: str, email: str, *, path: str = "/",
                  phone: bool = False, lang: str | None = None,
                  context: BrowserContext | None = None) -> Page:
    """A new browser context signed in through the /login form; lands on ``path``'s page."""
    context = context or await open_context(browser, phone=phone, lang=lang)
    page = await context.new_page()
    await page.goto(f"{base}/login?next={path}")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state("domcontentloaded")
    return page


async def axe(page: Page, name: str = "") -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is now."""
    result = await page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ["violations"]});
        return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
          .map(v => ({id: v.id, impact: v.impact, help: v.help,
                      nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}));
    }""")
    found: list[dict[str, Any]] = result
    if found:
        await shot(page, f"axe-{name or 'page'}")
    return found


async def assert_accessible(page: Page, name: str = "") -> None:
    violations = await axe(page, name)
    assert violations == [], f"{name}: {violations}"


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


async def customer(base: str, phone: str, text: str, name: str | None = None,
                   session: str | None = None) -> dict[str, Any]:
    """A customer writes through the simulator and waits for the bot's outcome."""
    cookies = {"atiende_sim": session or f"sim-{phone.strip('+')}-session-0001"}
    async with httpx.AsyncClient(base_url=base, timeout=20, cookies=cookies) as http:
        body: dict[str, Any] = {"from": phone, "text": text}
        if name:
            body["name"] = name
        accepted = (await http.post("/api/v1/simulator/messages", json=body)).json()
        outcome = await http.get(f"/api/v1/simulator/messages/{accepted['message_id']}",
                                 params={"wait": 15})
        data: dict[str, Any] = outcome.json()
        return data
