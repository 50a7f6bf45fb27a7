"""The inbox's follow-ups in a real headless Chromium: a contact's sequences (stop,
enroll), the "probably blocked" mark with its evidence (clear), the "to do by hand" list;
customer text stays text."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, expect

from bot.clock import FakeClock
from bot.sequences import SequenceDraft, Step
from bot.wiring.runtime import Runtime
from handoff.roles import Role
from tests.browsers import CHROMIUM, chromium, serve
from tests.handoff.test_inbox_browser import PASSWORD, shot
from tests.sequences.test_blocking import BLOCKER, NORMAL, _conversation, _daily, _day

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")

XSS_NAME = "<img src=x onerror=\"window.__xss=1\">Chencho"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def test_sequences_blocked_mark_and_hand_list_in_the_inbox(
    rt: Runtime, api: httpx.AsyncClient, fake_clock: FakeClock, browser: Browser
) -> None:
    # five days of a daily sequence: the blocker is marked (the real detector)
    await _daily(rt, api, 10)
    fake_clock.advance(hours=24)
    for _ in range(5):
        await _day(rt, fake_clock, receipts=True)
    blocker = await _conversation(rt, BLOCKER)
    assert await rt.blocked.of_conversation(blocker) is not None
    # a Cloud API customer who never wrote: the step has no template, so it is to do by hand
    cloud = SequenceDraft(name="renovación", channel="whatsapp_cloud", account="1065",
                          steps=(Step(delay_minutes=0, text="Hola {nombre}, ¿renovamos?"),))
    cloud_id = (await rt.sequences.create(cloud, by=None)).id
    await rt.sequences.enroll_phone(cloud_id, phone="+525588889999", name=XSS_NAME, by=None)
    other = SequenceDraft(name="bienvenida", steps=(Step(delay_minutes=30, text="¡Hola!"),))
    await rt.sequences.create(other, by=None)

    await rt.auth.create_user(email="sup@seguros.mx", name="Sofía", role=Role.SUPERVISOR,
                              password=PASSWORD)
    # the runtime's own worker (started by the fixture) runs; the fixture closes the runtime
    async with serve(rt, worker=False, lifespan="off") as base:
        page = await (await browser.new_context(viewport={"width": 1280, "height": 900})
                      ).new_page()
        await page.goto(f"{base}/login?next=/inbox/conversations/{blocker}")
        await page.fill("input[name=email]", "sup@seguros.mx")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/inbox/conversations/{blocker}")

        # the mark, with its evidence; the sequence it stopped
        await expect(page.get_by_test_id("blocked")).to_be_visible()
        await expect(page.get_by_test_id("blocked")).to_contain_text("6 mensajes sin entregar")
        await rt.sequence_ticker.tick()
        await page.reload()
        await expect(page.get_by_test_id("enrollment")).to_contain_text("probably_blocked")
        await shot(page, "sequences-01-blocked")
        await page.get_by_test_id("clear-blocked").click()
        await expect(page.get_by_test_id("blocked")).to_be_hidden()
        assert await rt.blocked.of_conversation(blocker) is None

        # a reachable customer: active sequence, stop it, enroll in another
        normal = await _conversation(rt, NORMAL[1])
        await page.goto(f"{base}/inbox/conversations/{normal}")
        item = page.get_by_test_id("enrollment")
        await expect(item).to_contain_text("diaria · activa")
        # the number as the customer knows it (not the simulator's contact key), and who wrote
        await expect(page.get_by_test_id("contact-phone")).to_have_text(NORMAL[1])
        await expect(page.get_by_test_id("contact-name")).not_to_contain_text("sim:")
        step = page.locator("[data-testid=message][data-author=sequence]").first
        await expect(step.locator(".who")).to_contain_text("Secuencia")
        await page.get_by_test_id("sequence-stop").click()
        await expect(item).to_contain_text("detenida")
        await expect(item).to_contain_text("stopped_by_staff")
        await page.get_by_test_id("sequence-choose").select_option(label="bienvenida")
        await page.get_by_test_id("sequence-enroll").click()
        await expect(page.get_by_test_id("enrollment").first).to_contain_text("bienvenida · activa")
        await shot(page, "sequences-02-enrolled")

        # the hand list, with the customer's name as text, and done
        await expect(page.get_by_test_id("task-count")).to_have_text("1")
        await page.get_by_text("Pendientes a mano").click()
        task = page.get_by_test_id("task")
        await expect(task).to_contain_text(XSS_NAME)
        await expect(task).to_contain_text("outside_24h_window")
        await shot(page, "sequences-03-hand-list")
        await page.get_by_test_id("task-done").click()
        await expect(page.get_by_test_id("task-count")).to_have_text("0")
        assert await page.evaluate("window.__xss") is None

        await page.select_option("#lang", "en")
        await expect(page.get_by_text("To do by hand")).to_be_visible()
