"""The catalog and intent-example editor pages in a real headless Chromium (Playwright):
create, edit, search, history, delete, add/remove examples, reasons on bad input, Spanish
and English, and customer/admin text that stays text."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Dialog, Page, expect

from bot.wiring.runtime import Runtime
from handoff.roles import Role
from tests.browsers import CHROMIUM, chromium, serve

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "kbadmin"
PASSWORD = "clave-larga-123"
XSS_NAME = '<img src=x onerror="window.__xss=1">Kit vial'
XSS_EXAMPLE = "<script>window.__xss=2</script> ya no me manden promos"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")


@pytest.fixture
async def base_url(runtime: Runtime) -> AsyncIterator[str]:
    await runtime.knowledge.embedder.embed(["hola"])  # the model loads once, not on a click
    async with serve(runtime, worker=False) as base:
        yield base


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def login(browser: Browser, base: str, path: str) -> Page:
    # bypass_csp: wait_for_function evaluates strings, which the CSP forbids (tests/security
    # drives the pages under the real CSP)
    page = await (await browser.new_context(viewport={"width": 1280, "height": 900},
                                            bypass_csp=True)).new_page()
    page.on("dialog", lambda d: asyncio.ensure_future(_accept(d)))
    await page.goto(f"{base}/login?next={path}")
    await page.fill("input[name=email]", "ana@seguros.mx")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}{path}")
    return page


async def _accept(dialog: Dialog) -> None:
    await dialog.accept()


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_catalog_page(base_url: str, browser: Browser, runtime: Runtime) -> None:
    await runtime.auth.create_user(email="ana@seguros.mx", name="Ana", role=Role.ADMIN,
                                   password=PASSWORD)
    page = await login(browser, base_url, "/admin/kb/catalog")
    t = page.get_by_test_id
    await expect(page.locator("#catalog")).to_be_visible()
    await expect(t("tab-catalog")).to_have_text("Catálogo")

    await t("p-new").click()
    await t("p-sku").fill("KIT-VIAL")
    await t("p-name").fill(XSS_NAME)
    await t("p-desc").fill("Triángulos, cables pasacorriente y extintor")
    await t("p-price").fill("899.00")
    await t("p-stock").fill("25")
    await t("p-category").fill("Accesorios")
    await t("p-save").click()
    await expect(t("p-msg")).to_have_text("✓ Guardado v1")
    await expect(t("p-row")).to_have_count(1)
    await expect(t("p-row").first).to_contain_text(XSS_NAME)  # shown as text, not markup
    await expect(t("p-row").first).to_contain_text("$899.00 MXN")

    # a bad price is refused with the reason; nothing changes
    await t("p-price").fill("caro")
    await t("p-save").click()
    await expect(t("p-msg")).to_have_class("err")
    await expect(t("p-msg")).to_contain_text("price")
    await t("p-price").fill("949.50")
    await t("p-stock").fill("")
    await t("p-save").click()
    await expect(t("p-msg")).to_have_text("✓ Guardado v2")
    await expect(t("p-version")).to_have_count(2)
    await expect(t("p-row").first).to_contain_text("sin dato")
    product = await runtime.knowledge.get_product("KIT-VIAL")
    assert str(product.price) == "949.50" and product.stock is None
    assert product.updated_by == "ana@seguros.mx"

    # a second product, then search
    await t("p-new").click()
    await t("p-sku").fill("AUTO-AMP")
    await t("p-name").fill("Seguro de Auto Amplia")
    await t("p-price").fill("11800")
    await t("p-category").fill("Autos")
    await t("p-save").click()
    await expect(t("p-row")).to_have_count(2)
    await t("p-search").fill("acceso")
    await expect(t("p-row")).to_have_count(1)
    await expect(t("p-row").first).to_contain_text("KIT-VIAL")
    await shot(page, "01-catalog")

    # open, restore version 1, delete
    await t("p-row").first.locator("td").first.click()
    await expect(t("p-sku")).to_have_value("KIT-VIAL")
    await t("p-restore").last.click()  # the oldest version is listed last
    await expect(t("p-msg")).to_have_text("✓ v3")
    await expect(t("p-price")).to_have_value("899.00")
    await expect(t("p-stock")).to_have_value("25")
    await t("p-del").click()
    await expect(t("p-msg")).to_have_text("✓ Borrado v4")
    await expect(t("p-row")).to_have_count(0)
    await page.locator("#p-deleted").check()
    await expect(t("p-row").first).to_contain_text("(borrado)")

    # English
    assert await page.evaluate("window.__xss") is None
    await page.select_option("#lang", "en")  # the page reloads in English
    await expect(t("tab-catalog")).to_have_text("Catalog")
    await page.locator("#p-deleted").check()
    await t("p-search").fill("acceso")
    await expect(t("p-row").first).to_contain_text("(deleted)")
    assert await page.evaluate("window.__xss") is None


async def test_intent_examples_page(base_url: str, browser: Browser, runtime: Runtime) -> None:
    await runtime.auth.create_user(email="ana@seguros.mx", name="Ana", role=Role.ADMIN,
                                   password=PASSWORD)
    await runtime.intent_examples.seed()
    page = await login(browser, base_url, "/admin/kb/intents")
    t = page.get_by_test_id
    await expect(page.locator("#intents")).to_be_visible()
    await expect(t("i-count")).not_to_have_text("0 ejemplos")
    await expect(t("i-row").first).to_be_visible()  # the rows come after the count
    seeded = await t("i-row").count()
    assert seeded > 40

    await t("i-intent").select_option("opt_out")
    await t("i-text").fill(XSS_EXAMPLE)
    await t("i-add").click()
    await expect(t("i-msg")).to_have_text("✓ Agregado")
    await t("i-filter").select_option("opt_out")
    await t("i-search").fill("promos")
    await expect(t("i-row")).to_have_count(1)
    row = t("i-row").first
    await expect(row).to_contain_text(XSS_EXAMPLE)
    await expect(row).to_contain_text("baja (no más mensajes)")
    await expect(row).to_contain_text("ana@seguros.mx")
    stored = await runtime.intent_examples.all(intent="opt_out", query="promos")
    assert [e.text for e in stored] == [XSS_EXAMPLE]
    await shot(page, "02-intents")

    # an empty example is refused with the reason
    await t("i-text").fill("   ")
    await t("i-add").click()
    await expect(t("i-msg")).to_have_class("err")
    await expect(t("i-msg")).not_to_be_empty()

    await row.get_by_test_id("i-remove").click()
    await expect(t("i-row")).to_have_count(0)
    assert await runtime.intent_examples.all(intent="opt_out", query="promos") == []

    assert await page.evaluate("window.__xss") is None
    await page.select_option("#lang", "en")  # the page reloads in English
    await expect(t("tab-intents")).to_have_text("Intents")
    await t("i-filter").select_option("opt_out")
    await t("i-search").fill("promos")
    await expect(t("i-count")).to_have_text("0 examples")
    assert await page.evaluate("window.__xss") is None
