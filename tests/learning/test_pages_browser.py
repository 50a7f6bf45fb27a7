"""Knowledge suggestions in a real headless Chromium (Playwright): the admin page in the
knowledge-base admin (ranked by customers, what was masked, edit then approve as a new
article or as a section + example questions of an existing one, dismiss, a refused empty
body, supervisors read only), example questions edited in the article editor and used by
retrieval, and an agent marking a reply "add to the knowledge base" in the inbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from bot.wiring.runtime import Runtime
from knowledge.demo import load_demo_if_empty
from tests.browsers import CHROMIUM, chromium, serve
from tests.conftest import ask
from tests.handoff.conftest import PASSWORD, Staff, StaffFactory
from tests.learning.conftest import answer_and_resolve, handed_over, suggestions

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "learning"
XSS = '<img src=x onerror="window.__xss=1">'

PETS = "Hola, soy Rosa Salas. ¿Tienen seguro para mascotas? Tengo un perro"
PETS_AGAIN = "oigan, ¿aseguran perros y gatos?"
PETS_REPLY = ("Sí, tenemos seguro para mascotas: perros y gatos de 3 meses a 9 años, gastos "
              "veterinarios por accidente o enfermedad hasta 30,000 pesos al año. Cuesta desde "
              "250 pesos al mes.")
WARRANTY = "¿Tienen garantía extendida para electrodomésticos?"
WARRANTY_REPLY = ("No vendemos garantías extendidas, pero el Seguro de Hogar Integral cubre tus "
                  "electrodomésticos por daño eléctrico (variaciones de voltaje o un rayo) "
                  "hasta 40,000 pesos por evento.")
DRONES = "¿Aseguran drones?"
DRONES_REPLY = f"{XSS}Por ahora no aseguramos drones ni aeronaves de ningún tipo."

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


async def login(browser: Browser, base: str, who: Staff, path: str) -> Page:
    # bypass_csp: wait_for_function evaluates a string (the pages themselves run under CSP)
    page = await (await browser.new_context(viewport={"width": 1280, "height": 900},
                                            bypass_csp=True)).new_page()
    await page.goto(f"{base}/login?next={path}")
    await page.fill("input[name=email]", who.principal.email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}{path}")
    return page


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_suggestions_page(
    base_url: str, browser: Browser, client: httpx.AsyncClient, runtime: Runtime,
    staff: StaffFactory,
) -> None:
    await load_demo_if_empty(runtime.knowledge)
    agent, admin, supervisor = await staff("agent"), await staff("admin"), await staff("supervisor")
    for text, phone, name, reply in (
        (WARRANTY, "+5215530000001", None, WARRANTY_REPLY),
        (PETS, "+5215530000002", "Rosa Salas", PETS_REPLY),
        (PETS_AGAIN, "+5215530000003", None, PETS_REPLY),
        (DRONES, "+5215530000004", None, DRONES_REPLY),
    ):
        conversation = await handed_over(client, text, phone=phone, name=name)
        await answer_and_resolve(client, agent, conversation, [reply])

    # the knowledge-base admin leads to the suggestions, the most asked first
    page = await login(browser, base_url, admin, "/admin/kb")
    await page.get_by_test_id("tab-suggestions").click()
    await page.wait_for_url(f"{base_url}/admin/kb/suggestions")
    await page.wait_for_function("document.body.dataset.ready === '1'")
    cards = page.get_by_test_id("suggestion")
    await expect(cards).to_have_count(3)
    pets = cards.nth(0)
    await expect(pets).to_contain_text("2 clientes")
    await expect(pets.get_by_test_id("questions").locator("li")).to_have_count(2)
    await expect(pets.get_by_test_id("masked")).to_contain_text("nombre × 1")  # what was masked
    await expect(page.locator("main")).not_to_contain_text("Rosa")
    await expect(page.locator("main")).to_contain_text(XSS)  # agents' text stays text
    assert await page.evaluate("window.__xss") is None
    await shot(page, "suggestions")

    # an empty body is refused with the reason; nothing is written
    await pets.get_by_test_id("body").fill("  ")
    await pets.get_by_test_id("approve").click()
    await expect(pets.get_by_test_id("result")).to_contain_text("empty")
    await expect(pets.get_by_test_id("result")).to_have_class("err")

    # edited, then approved as a new article
    await pets.get_by_test_id("title").fill("Seguro para mascotas")
    await pets.get_by_test_id("body").fill(PETS_REPLY + " Incluye asistencia por extravío.")
    await pets.get_by_test_id("examples").fill("¿Tienen seguro para mascotas?\n"
                                               "¿Aseguran perros y gatos?")
    await pets.get_by_test_id("approve").click()
    await expect(pets.get_by_test_id("result")).to_have_text(
        "Aprobada: artículo seguro-para-mascotas")
    article = await runtime.knowledge.get_article("seguro-para-mascotas")
    assert article.title == "Seguro para mascotas" and "extravío" in article.body
    assert article.questions == ("¿Tienen seguro para mascotas?", "¿Aseguran perros y gatos?")
    out = await ask(client, "quiero asegurar a mi gato, ¿tienen seguro para mascotas?",
                    phone="+5215530000005")
    assert out["sources"] and out["sources"][0] == "seguro-para-mascotas", out

    # approved as a new section (and example questions) of an existing article
    await expect(cards).to_have_count(2)  # the list reloads: pending only
    warranty = cards.filter(has_text="garantía extendida")
    await warranty.get_by_test_id("mode").select_option("extend")
    await warranty.get_by_test_id("article").select_option("seguro-hogar")
    await warranty.get_by_test_id("title").fill("Electrodomésticos y daño eléctrico")
    await warranty.get_by_test_id("approve").click()
    await expect(warranty.get_by_test_id("result")).to_have_text("Aprobada: artículo seguro-hogar")
    home = await runtime.knowledge.get_article("seguro-hogar")
    assert "## Electrodomésticos y daño eléctrico" in home.body and "voltaje" in home.body
    assert WARRANTY in home.questions

    # dismissed
    await expect(cards).to_have_count(1)
    await cards.nth(0).get_by_test_id("dismiss").click()
    await expect(cards.nth(0).get_by_test_id("result")).to_have_text("Descartada")
    await expect(page.get_by_test_id("suggestions")).to_contain_text("No hay sugerencias aquí.")
    await page.get_by_test_id("status-filter").select_option("all")
    await expect(cards).to_have_count(3)
    await expect(page.locator("#f-closed")).to_have_text("2")
    await page.select_option("#lang", "en")
    await expect(page.locator("h1")).to_have_text("Knowledge-base suggestions")
    await expect(cards.filter(has_text="garantía extendida")).to_contain_text(
        "added to article seguro-hogar")
    await shot(page, "suggestions-decided")
    assert (await suggestions(client, admin, status="pending")) == []

    # the analytics page: gaps closed, customers answered by articles from suggestions
    await page.goto(f"{base_url}/admin/analytics")
    await expect(page.locator("#kpi-gaps-closed")).to_have_text("2")
    await expect(page.locator("#kpi-learned-customers")).to_have_text("1")
    await expect(page.locator("#kpi-pending-suggestions")).to_have_text("0")

    # supervisors read, and cannot decide
    watcher = await login(browser, base_url, supervisor, "/admin/kb/suggestions")
    await watcher.wait_for_function("document.body.dataset.ready === '1'")
    await watcher.get_by_test_id("status-filter").select_option("all")
    await expect(watcher.get_by_test_id("suggestion")).to_have_count(3)
    await expect(watcher.get_by_test_id("approve")).to_have_count(0)
    await expect(watcher.get_by_test_id("dismiss")).to_have_count(0)


async def test_example_questions_in_the_article_editor(
    base_url: str, browser: Browser, client: httpx.AsyncClient, runtime: Runtime,
    staff: StaffFactory,
) -> None:
    await load_demo_if_empty(runtime.knowledge)
    admin = await staff("admin")
    # handed over today (read as an account question); the home article answers it
    question = "¿me pagan si se me mete el agua de la lluvia por el techo?"
    before = await ask(client, question, phone="+5215530000011")
    assert not before["sources"] or before["sources"][0] != "seguro-hogar", before

    page = await login(browser, base_url, admin, "/admin/kb")
    await page.locator("#q").fill("hogar")
    await page.locator("#rows button", has_text="seguro-hogar").first.click()
    await expect(page.locator("#e-id")).to_have_value("seguro-hogar")
    current = await page.locator("#e-questions").input_value()
    await page.locator("#e-questions").fill(f"{current}\n{question}".strip())
    await page.locator("#save").click()
    await expect(page.locator("#e-msg")).to_contain_text("✓ v")
    assert question in (await runtime.knowledge.get_article("seguro-hogar")).questions
    after = await ask(client, question, phone="+5215530000012")
    assert after["sources"] and after["sources"][0] == "seguro-hogar", after


async def test_marking_a_reply_in_the_inbox(
    base_url: str, browser: Browser, client: httpx.AsyncClient, runtime: Runtime,
    staff: StaffFactory,
) -> None:
    await load_demo_if_empty(runtime.knowledge)
    agent, admin = await staff("agent"), await staff("admin")
    conversation = await handed_over(client, "¿Hacen donativos o patrocinan eventos deportivos?",
                                     phone="+5215530000021")
    reply = "Por ahora no otorgamos patrocinios ni donativos a eventos deportivos ni a ligas."
    await answer_and_resolve(client, agent, conversation, [reply, "👍"], resolve=False)

    page = await login(browser, base_url, agent, f"/inbox/conversations/{conversation}")
    mine = page.get_by_test_id("suggest-reply")
    await expect(mine).to_have_count(2)  # one per own reply
    await mine.nth(1).click()  # "👍" teaches nothing: the reason, nothing filed
    await expect(page.locator("#error")).to_contain_text("too little")
    await expect(mine.nth(1)).to_be_enabled()
    await mine.nth(0).click()
    await expect(mine.nth(0)).to_have_text("Sugerido (1 cliente)")
    await expect(mine.nth(0)).to_be_disabled()
    await shot(page, "inbox-marked")
    listed = await suggestions(client, admin, status="pending")
    assert len(listed) == 1 and listed[0]["replies"] == [reply], listed
