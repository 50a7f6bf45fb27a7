"""The inbox in a real headless Chromium (Playwright): two agents on two app instances, live
updates, claim, reply, resolve, escaping. The apps run under uvicorn on free 127.0.0.1 ports
inside the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.roles import Role
from tests.browsers import CHROMIUM, chromium, serve

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "handoff"
XSS_NAME = "<img src=x onerror=\"window.__xss=1\">Lupe"
XSS_TEXT = "<script>window.__xss=2</script> quiero un asesor, me chocaron 😭"
PHONE = "+525512340987"
PASSWORD = "clave-larga-123"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")


@pytest.fixture
async def servers(
    settings: Settings, database_url: str, redis_url: str
) -> AsyncIterator[tuple[str, str, Runtime]]:
    """Two app instances (own runtime, own Redis connections, own worker) on one database:
    what agents on different app processes behind a load balancer would use."""
    one = await Runtime.create(settings, database_url=database_url, redis_url=redis_url)
    two = await Runtime.create(settings, database_url=database_url, redis_url=redis_url)
    async with (serve(one, worker=True, lifespan="on") as base_one,
                serve(two, worker=True, lifespan="on") as base_two):
        yield base_one, base_two, one


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def login(browser: Browser, base: str, email: str) -> Page:
    # bypass_csp: wait_for_function evaluates strings, which the CSP forbids (tests/security
    # drives the pages under the real CSP)
    context = await browser.new_context(viewport={"width": 1280, "height": 860}, bypass_csp=True)
    page = await context.new_page()
    await page.goto(f"{base}/login?next=/inbox")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/inbox")
    await page.wait_for_function("document.body.dataset.live === '1'")
    await page.evaluate("window.__noReload = 1")
    return page


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# the customer's phone: one simulator session (only it may read its chat back)
CUSTOMER_COOKIES = {"atiende_sim": "customer-phone-session-0001"}


async def customer(base: str, text: str, name: str | None = None) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=base, timeout=15, cookies=CUSTOMER_COOKIES) as http:
        body: dict[str, object] = {"from": PHONE, "text": text}
        if name:
            body["name"] = name
        accepted = (await http.post("/api/v1/simulator/messages", json=body)).json()
        outcome = await http.get(f"/api/v1/simulator/messages/{accepted['message_id']}",
                                 params={"wait": 10})
        data: dict[str, object] = outcome.json()
        return data


async def test_two_agents_live_claim_reply_resolve(
    servers: tuple[str, str, Runtime], browser: Browser
) -> None:
    base, other_base, runtime = servers
    for email, name in (("ana@seguros.mx", "Ana"), ("beto@seguros.mx", "Beto")):
        await runtime.auth.create_user(email=email, name=name, role=Role.AGENT,
                                       password=PASSWORD)
    ana = await login(browser, base, "ana@seguros.mx")
    beto = await login(browser, other_base, "beto@seguros.mx")  # another app instance
    for page in (ana, beto):
        await expect(page.get_by_test_id("list")).to_contain_text("Sin conversaciones")

    # a customer escalates: the conversation appears in both queues, live
    escalated = await customer(base, XSS_TEXT, name=XSS_NAME)
    assert escalated["owner"] == "queued"
    for page in (ana, beto):
        await expect(page.get_by_test_id("item")).to_have_count(1, timeout=10_000)
        await expect(page.get_by_test_id("item").first).to_contain_text("Lupe")
    await shot(ana, "01-queue-ana")

    for page in (ana, beto):
        await page.get_by_test_id("item").first.click()
        await expect(page.get_by_test_id("contact-name")).to_have_text(XSS_NAME)
        await expect(page.get_by_test_id("owner")).to_have_attribute("data-owner", "queued")
        await expect(page.get_by_test_id("summary")).to_contain_text("me chocaron")

    # Ana claims; Beto's view follows without a reload and his claim is refused with a reason
    await ana.get_by_test_id("claim").click()
    await expect(ana.get_by_test_id("owner")).to_have_attribute("data-owner", "human")
    await expect(beto.get_by_test_id("owner")).to_have_attribute("data-owner", "human",
                                                                 timeout=10_000)
    await expect(beto.get_by_test_id("agent")).to_have_text("Ana")
    await expect(beto.get_by_test_id("claim")).to_be_hidden()
    refused = await beto.evaluate(
        "fetch(location.pathname.replace('/inbox/conversations/', '/api/v1/conversations/')"
        " + '/claim', {method: 'POST', headers: {'X-CSRF-Token': document.body.dataset.csrf}})"
        ".then(async r => [r.status, (await r.json()).detail])"
    )
    assert refused == [409, "already claimed by Ana"]
    await shot(beto, "02-beto-sees-claim")

    # the customer writes: the message shows up live, and the bot stays silent
    silent = await customer(base, "¿ya me atienden? es urgente")
    assert silent["owner"] == "human" and silent["replies"] == []
    for page in (ana, beto):
        await expect(page.get_by_test_id("messages")).to_contain_text("es urgente",
                                                                       timeout=10_000)

    # Ana replies through the outbox
    await ana.get_by_test_id("reply").fill("Hola Lupe, soy Ana. Ya levanto tu reporte 🚗")
    await ana.get_by_test_id("send").click()
    await expect(ana.get_by_test_id("message").last).to_contain_text("Ya levanto tu reporte")
    await expect(beto.get_by_test_id("messages")).to_contain_text("Ya levanto tu reporte",
                                                                   timeout=10_000)
    async with httpx.AsyncClient(base_url=base) as http:
        # anyone else's session sees nothing of it; the customer's own sees it all
        assert (await http.get(f"/api/v1/simulator/conversations/{PHONE}")).json() == []
        http.cookies.update(CUSTOMER_COOKIES)
        chat = (await http.get(f"/api/v1/simulator/conversations/{PHONE}")).json()
    agent_lines = [line for line in chat if line["author"] == "agent"]
    assert agent_lines and agent_lines[-1]["status"] == "sent"

    # a note, then resolve: back to the bot, and the customer is asked for a rating
    await ana.get_by_test_id("note").fill("<b>no es negrita</b>")
    await ana.get_by_test_id("add-note").click()
    await expect(ana.get_by_test_id("note-item")).to_contain_text("<b>no es negrita</b>")
    await ana.get_by_test_id("resolve").click()
    await expect(ana.get_by_test_id("owner")).to_have_attribute("data-owner", "bot")
    # (Beto, who never held it, stops seeing it once the handoff is closed: the stream
    # sends him nothing more of it; handoff.access)
    await expect(ana.get_by_test_id("messages")).to_contain_text("del 1")
    await shot(ana, "03-resolved")

    # Beto writes first to another customer from the inbox: the conversation is his
    await beto.get_by_text("Escribir a un cliente").click()
    await beto.get_by_test_id("new-phone").fill("55 8765 4321")
    await beto.get_by_test_id("new-text").fill("Hola, le escribo por la renovación de su póliza")
    await beto.get_by_test_id("new-send").click()
    await expect(beto.get_by_test_id("owner")).to_have_attribute("data-owner", "human")
    await expect(beto.get_by_test_id("agent")).to_have_text("Beto")
    await expect(beto.get_by_test_id("messages")).to_contain_text("renovación de su póliza")

    for page in (ana, beto):
        assert await page.evaluate("window.__xss") is None  # the payloads stayed text
        assert await page.evaluate("window.__noReload") == 1  # everything arrived live

    # English interface (the selector reloads the page in the other language)
    await ana.select_option("#lang", "en")
    await expect(ana.get_by_test_id("tab-queued")).to_contain_text("Queue")
    await expect(ana.get_by_test_id("owner")).to_have_text("bot")
    await shot(ana, "04-english")
    assert await ana.evaluate("window.__xss") is None
    for page in (ana, beto):
        await page.context.close()
