from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.pages.conftest import axe, customer, new_user, shot, sign_in


async def test_scratch(live, browser: Browser) -> None:
    base, runtime = live
    email = await new_user(runtime, "agent", "Ana")
    out = await customer(base, "+525512340001", "quiero hablar con un asesor, *urgente*", name="Lupe Pérez")
    print(out)
    page = await sign_in(browser, base, email)
    print(page.url)
    await expect(page.get_by_test_id("item")).to_have_count(1, timeout=10000)
    await shot(page, "scratch-1")
    await page.get_by_test_id("item").first.click()
    await expect(page.get_by_test_id("owner")).to_have_attribute("data-owner", "queued")
    await shot(page, "scratch-2")
    print(await axe(page, "scratch"))
