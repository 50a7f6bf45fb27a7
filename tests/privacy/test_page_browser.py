"""The customer data page in a real headless Chromium: look a customer up, download the
archive, erase (with the number typed again), Spanish and English, customer text shown
as text."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from bot.wiring.runtime import Runtime
from handoff.roles import Role
from tests.browsers import CHROMIUM, chromium, serve
from tests.conftest import ask

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "privacy"
PASSWORD = "clave-larga-123"
XSS_NAME = '<img src=x onerror="window.__xss=1">Dalia'
KEY = "sim:+525544440001"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")


@pytest.fixture
async def base_url(runtime: Runtime) -> AsyncIterator[str]:
    async with serve(runtime, worker=False) as base:
        yield base


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def _login(browser: Browser, base: str, email: str, path: str) -> Page:
    page = await (await browser.new_context(accept_downloads=True)).new_page()
    await page.goto(f"{base}/login?next={path}")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}{path}")
    return page


async def test_look_up_download_and_erase_from_the_page(
    runtime: Runtime, client: httpx.AsyncClient, base_url: str, browser: Browser,
) -> None:
    await runtime.auth.create_user(email="dueno@seguros.mx", name="Dueño", role=Role.ADMIN,
                                   password=PASSWORD)
    await runtime.auth.create_user(email="agente@seguros.mx", name="Agente", role=Role.AGENT,
                                   password=PASSWORD)
    await ask(client, "hola, <b>negritas</b> y mi póliza", phone=KEY[4:], name=XSS_NAME)
    page = await _login(browser, base_url, "dueno@seguros.mx", "/admin/contacts")
    await expect(page.locator("h1")).to_have_text("Datos de clientes")

    await page.fill("#phone", KEY)
    await page.click("#lookup button[type=submit]")
    await expect(page.locator("#held")).to_be_visible()
    await expect(page.locator("#status")).to_contain_text(XSS_NAME)  # as text
    assert await page.evaluate("window.__xss") is None
    rows = page.locator("#held-rows tr")
    texts = await rows.all_inner_texts()
    assert any(t.startswith("messages") for t in texts)

    async with page.expect_download() as waiting:
        await page.click("#archive-link")
    download = await waiting.value
    with zipfile.ZipFile(io.BytesIO(Path(await download.path()).read_bytes())) as zipped:
        assert json.loads(zipped.read("export.json"))["contact"]["name"] == XSS_NAME

    await page.fill("#confirm", "+525500000000")
    await page.click("#erase button[type=submit]")
    await expect(page.locator("#status")).to_have_text("El número no coincide; no se borró nada")
    await page.fill("#confirm", KEY)
    await page.click("#erase button[type=submit]")
    await expect(page.locator("#status")).to_contain_text("Datos borrados")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "erased.png"), full_page=True)
    await page.context.add_cookies([{"name": "atiende_lang", "value": "en", "url": base_url}])
    await page.goto(f"{base_url}/admin/contacts")
    await expect(page.locator("h1")).to_have_text("Customer data")
    await expect(page.locator("#erasures")).to_contain_text("dueno@seguros.mx (api)")
    await page.fill("#phone", KEY)
    await page.click("#lookup button[type=submit]")
    await expect(page.locator("#status")).to_contain_text("already erased on")

    agent = await _login(browser, base_url, "agente@seguros.mx", "/inbox")
    response = await agent.goto(f"{base_url}/admin/contacts")
    assert response is not None and response.status == 403
