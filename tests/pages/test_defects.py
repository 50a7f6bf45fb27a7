"""The smaller defects found by trying the pages as a new user, each driven in Chromium:
restoring an article says the new version; an uploaded contact list shows without a
reload; a disabled WhatsApp number does not say "connecting" (and the page speaks one
language); the simulator says why it could not send; WhatsApp formatting shows as
formatting; "resolved" is not an escalation reason in analytics."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, Dialog, expect

from bot.reports.analytics import Analytics, Period
from bot.wiring.runtime import Runtime
from handoff.roles import Role
from tests.pages.conftest import assert_accessible, customer, new_user, open_context, sign_in


async def _accept(dialog: Dialog) -> None:
    await dialog.accept()


async def test_restoring_an_article_says_the_new_version(
    live: tuple[str, Runtime], browser: Browser
) -> None:
    base, runtime = live
    page = await sign_in(browser, base, await new_user(runtime, "admin"), path="/admin/kb")
    await page.get_by_role("button", name="Nuevo artículo").click()
    await page.fill("#e-id", "horario-sucursal")
    await page.fill("#e-title", "Horario de la sucursal")
    await page.fill("#e-body", "Abrimos de 9 a 18 h.")
    await page.click("#save")
    await expect(page.get_by_test_id("e-msg")).to_have_text("✓ v1")
    await page.fill("#e-body", "Abrimos de 10 a 19 h.")
    await page.click("#save")
    await expect(page.get_by_test_id("e-msg")).to_have_text("✓ v2")
    await page.get_by_test_id("a-restore").last.click()  # the oldest version is listed last
    await expect(page.get_by_test_id("e-msg")).to_have_text("✓ Restaurada la versión 1 como v3")
    await expect(page.locator("#e-body")).to_have_value(re.compile(r"^Abrimos de 9 a 18 h\.\s*$"))
    await page.context.close()


async def test_an_uploaded_contact_list_shows_at_once(
    live: tuple[str, Runtime], browser: Browser, tmp_path: Path
) -> None:
    base, runtime = live
    page = await sign_in(browser, base, await new_user(runtime, "supervisor"),
                         path="/admin/campaigns")
    await page.evaluate("window.__sameDocument = 1")
    cartera = tmp_path / "cartera.csv"
    cartera.write_text("telefono,nombre\n5512345678,Ana\n55 1234 5679,Beto\nabc,Mal\n")
    await page.fill("#upload input[name=name]", "Cartera diciembre")
    await page.set_input_files("#upload input[name=file]", str(cartera))
    await page.click("#upload button[type=submit]")
    await expect(page.get_by_test_id("upload-result")).to_have_text(
        "✓ 2 de 3 filas aceptadas")
    await expect(page.get_by_test_id("lists-body")).to_contain_text("Cartera diciembre")
    await expect(page.get_by_test_id("list-select").locator("option:checked")).to_have_text(
        "Cartera diciembre (2)")
    assert await page.evaluate("window.__sameDocument") == 1  # no reload
    await assert_accessible(page, "campaigns-uploaded")
    # a draft from the new list, and its page
    await page.fill("#create input[name=name]", "Renovaciones diciembre")
    await page.click("#create button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/admin/campaigns/[0-9a-f-]{36}$"))
    await expect(page.locator("#name")).to_have_text("Renovaciones diciembre")
    await assert_accessible(page, "campaign")
    await page.context.close()


async def test_a_disabled_number_is_not_connecting(
    live: tuple[str, Runtime], browser: Browser
) -> None:
    base, runtime = live
    await runtime.whatsapp.book.add("+525512340000", "Ventas")
    # linking was started: the number waits for a node to connect it
    await runtime.whatsapp.book.update("+525512340000", enabled=True, state="connecting")
    page = await sign_in(browser, base, await new_user(runtime, "admin"), path="/admin/whatsapp")
    number = page.get_by_test_id("number")
    await expect(number.get_by_test_id("state")).to_have_text("conectando")
    await number.get_by_role("button", name="Desactivar").click()
    await expect(number.get_by_test_id("state")).to_have_text("desactivado")
    await page.wait_for_timeout(3500)  # the page refreshes every 3 s: it stays so
    await expect(number.get_by_test_id("state")).to_have_text("desactivado")
    text = await page.locator("main").inner_text()
    for english in ("WhatsApp numbers", "Add a number", "connecting", "Disable", "Link with"):
        assert english not in text  # one language at a time
    await page.context.close()


async def test_the_simulator_says_why_and_formats(
    live: tuple[str, Runtime], browser: Browser
) -> None:
    base, _ = live
    page = await (await open_context(browser)).new_page()
    page.on("dialog", _accept)
    await page.goto(f"{base}/simulator")
    await page.fill("#phone", "no-es-un-numero")
    await page.fill("#text", "hola")
    await page.click("#send button[type=submit]")
    await expect(page.get_by_test_id("sim-error")).to_contain_text(
        "No se pudo enviar: número de teléfono no válido")
    await page.fill("#phone", "+5215599887766")
    await page.fill("#text", "hola, *mi póliza* por favor")
    await page.click("#send button[type=submit]")
    await expect(page.locator(".msg.in strong")).to_have_text("mi póliza")
    await expect(page.get_by_test_id("sim-error")).to_have_text("")
    await page.context.close()


async def test_resolved_is_not_an_escalation_reason(
    live: tuple[str, Runtime], browser: Browser
) -> None:
    base, runtime = live
    out = await customer(base, "+525566660001", "quiero hablar con un asesor", name="Iris")
    agent = await runtime.auth.create_user(email="ivo@seguros.mx", name="Ivo", role=Role.AGENT,
                                           password="clave-larga-123")
    conversation = uuid.UUID(str(out["conversation_id"]))
    await runtime.handoff.claim(agent, conversation)
    await runtime.handoff.resolve(agent, conversation)
    zone = runtime.settings.business_timezone
    today = runtime.clock().astimezone(ZoneInfo(zone)).date()
    report = await Analytics(runtime.sessions).report(Period(today, today, None, zone))
    assert report.reasons == {"customer_request": 1}
    page = await sign_in(browser, base, await new_user(runtime, "admin"),
                         path="/admin/analytics")
    reasons = page.locator("section", has=page.get_by_role("heading",
                                                          name="Motivos de escalamiento"))
    await expect(reasons).to_contain_text("customer_request")
    assert "resolved" not in await reasons.inner_text()
    await page.context.close()
