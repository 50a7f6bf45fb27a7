"""The conversation list at scale in Chromium (paging, search by name, phone and text, the
filters, keyboard reachability) and the phone layout at 390x844 (list, then the
conversation with its composer in view, then back)."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect
from sqlalchemy import text

from bot.bench.inbox import seed_conversations
from bot.wiring.runtime import Runtime
from handoff.roles import Role
from tests.pages.conftest import (
    PHONE,
    assert_accessible,
    customer,
    new_user,
    shot,
    sign_in,
)

# a second, older conversation of "Juan López 17" on another number
PAST_SQL = """INSERT INTO conversations (id, contact_id, channel, account, owner,
                  owner_changed_at, last_message_at, created_at)
              VALUES (md5('list-past-17')::uuid, md5('listcontact17')::uuid, 'whatsapp_cloud',
                      '1065', 'bot', now() - interval '2 days', now() - interval '2 days',
                      now() - interval '2 days')"""


async def rows(page: Page) -> list[str]:
    names: list[str] = await page.get_by_test_id("item").locator(".name").all_inner_texts()
    return names


async def test_list_search_filters_and_pages(live: tuple[str, Runtime], browser: Browser) -> None:
    base, runtime = live
    beto = await runtime.auth.create_user(email="beto-list@seguros.mx", name="Beto Lista",
                                          role=Role.AGENT, password="clave-larga-123")
    await seed_conversations(runtime.sessions, 130, tag="list", prefix="+52166",
                             agents=[beto.id])
    team = await runtime.inbox.create_team("Autos", ["autos"])
    async with runtime.sessions() as session, session.begin():
        await session.execute(text(
            "UPDATE handoff_tickets SET team_id = :team WHERE conversation_id IN "
            "(SELECT md5('listconv' || i)::uuid FROM unnest(ARRAY[40, 80, 120]) i)"),
            {"team": team.id})
    email = await new_user(runtime, "supervisor", "Sara Supervisora")
    page = await sign_in(browser, base, email, path="/inbox")
    await expect(page).to_have_url(f"{base}/inbox")
    t = page.get_by_test_id

    # everything, 50 at a time: the next page comes with "load more" (or by scrolling)
    await t("tab-all").click()
    await expect(t("item")).to_have_count(50)
    await expect(t("more")).to_be_visible()
    await t("more").click()
    await expect(t("item")).to_have_count(100)
    await assert_accessible(page, "inbox-list")

    # search over name, phone (any format) and message text
    for query, name in (("Juan López 17", "Juan López 17"), ("66 000 0042", "María López 42"),
                        ("póliza P93 ", "Luis Hernández 93")):
        await t("search").fill(query)
        await expect(t("item").locator(".name")).to_have_text([name])
    # the preview is the customer's last message, not the bot's; the last message's time
    await expect(t("item-preview")).to_have_text("Quiero saber de mi póliza P93 y el pago de casa")
    when = t("item").locator("time.when")
    stamp = await when.get_attribute("datetime")
    assert stamp
    # today (in the browser's time zone) shows the time, an earlier day the date: the
    # seeded message is ~1 hour old, so just after midnight it is yesterday's
    today = await page.evaluate(
        "s => new Date(s).toDateString() === new Date().toDateString()", stamp)
    shown = r"^\d{1,2}:\d{2}" if today else r"^\d{1,2} \w+"
    await expect(when).to_have_text(re.compile(shown))

    # the contact panel lists the customer's other conversations
    async with runtime.sessions() as session, session.begin():
        await session.execute(text(PAST_SQL))
    await t("search").fill("Juan López 17")
    await expect(t("item")).to_have_count(2)
    await t("item").first.click()
    await expect(t("past-item")).to_have_count(1)
    await t("search").fill("")

    # filters: label, agent, number; status tabs resolved and closed
    await page.locator("#filters summary").click()
    await t("f-label").select_option("vip")
    await expect(t("item")).to_have_count(13)  # i = 10, 20 … 130
    await t("f-label").select_option("")
    await t("f-agent").select_option(label="Beto Lista")
    await expect(t("item")).to_have_count(7)  # i % 20 == 1
    await t("f-agent").select_option("")
    await t("f-team").select_option(label="Autos")  # the open handoffs routed to the team
    await expect(t("item").locator(".name")).to_have_text(
        ["Lupe Pérez 40", "Lupe Pérez 80", "Lupe Pérez 120"])
    await t("f-team").select_option("")
    await t("f-channel").select_option("whatsapp")
    await t("f-account").fill("5215550000001")
    await t("f-account").press("Enter")
    await expect(t("item")).to_have_count(43)  # i % 3 == 0
    for name in await rows(page):
        assert int(name.rsplit(" ", 1)[1]) % 3 == 0
    await page.locator("#f-clear").click()
    await t("tab-closed").click()
    await expect(t("item")).to_have_count(7)  # i % 20 == 2
    await t("tab-resolved").click()
    await expect(t("item")).to_have_count(7)  # i % 20 == 3
    await t("tab-queued").click()
    await expect(t("item").first.get_by_test_id("wait")).to_contain_text("espera")

    # the list is reachable from the keyboard: search, arrows, Enter
    await t("search").fill("Lupe Pérez 8")
    await expect(t("item").locator(".name")).to_have_text(["Lupe Pérez 80"])  # queued: i % 20
    await t("search").press("ArrowDown")
    await expect(t("item").first).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(t("contact-name")).to_have_text("Lupe Pérez 80")
    # Alt+J / Alt+K: the next and previous conversation of the list
    await t("search").fill("")
    await t("tab-all").click()
    await expect(t("item")).to_have_count(50)
    names = await rows(page)
    await t("item").nth(3).click()
    await expect(t("contact-name")).to_have_text(names[3])
    await page.keyboard.press("Alt+KeyJ")
    await expect(t("contact-name")).to_have_text(names[4])
    await page.keyboard.press("Alt+KeyK")
    await page.keyboard.press("Alt+KeyK")
    await expect(t("contact-name")).to_have_text(names[2])
    await shot(page, "inbox-filters")
    await page.context.close()


async def test_phone_layout(live: tuple[str, Runtime], browser: Browser) -> None:
    base, runtime = live
    email = await new_user(runtime, "agent", "Pablo Teléfono")
    await customer(base, "+525577770001", "hola, quiero un asesor para mi siniestro",
                   name="Marta Móvil")
    page = await sign_in(browser, base, email, phone=True)
    await expect(page).to_have_url(f"{base}/inbox")
    t = page.get_by_test_id
    await t("search").fill("Marta Móvil")
    await expect(t("item")).to_have_count(1)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    await assert_accessible(page, "phone-list")
    await shot(page, "phone-list")

    await t("item").click()
    await expect(t("contact-name")).to_have_text("Marta Móvil")
    await expect(t("list")).to_be_hidden()
    pane = await page.locator(".conv-pane").bounding_box()
    assert pane is not None and pane["x"] == 0 and pane["width"] == PHONE["width"]
    await t("claim").click()
    await expect(t("owner")).to_have_attribute("data-owner", "human")
    for testid in ("reply", "send"):  # the composer is always in view
        box = await t(testid).bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    await t("reply").fill("Hola Marta, ya te ayudo")
    await t("send").click()
    await expect(t("message").last).to_contain_text("ya te ayudo")
    box = await t("reply").bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"]
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await assert_accessible(page, "phone-conversation")
    await shot(page, "phone-conversation")

    # the contact panel opens over it, and back goes to the list
    await page.locator("#side-toggle").click()
    await expect(t("ct-name")).to_be_visible()
    await t("side-close").click()
    await expect(t("ct-name")).to_be_hidden()
    await t("back").click()
    await expect(t("list")).to_be_visible()
    await expect(t("contact-name")).to_be_hidden()
    # the menu reaches the other pages
    await page.locator("#menu-toggle").click()
    await expect(t("nav-inbox")).to_be_visible()
    await page.context.close()
