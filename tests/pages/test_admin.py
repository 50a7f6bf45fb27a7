"""The app shell and the admin and supervisor pages in Chromium: home by role, "not
allowed" as a page, navigation by role, users (create, deactivate, reset a password),
everyone's own password, teams and skills, canned replies and label colours, business
hours and holidays in the database, the live dashboard with reassigning; axe-core on
every page, in Spanish and English."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from playwright.async_api import Browser, expect

from bot.sequences import SequenceDraft, Step
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.config import HandoffConfig
from handoff.roles import Role
from tests.pages.conftest import (
    PASSWORD,
    assert_accessible,
    customer,
    new_user,
    open_context,
    shot,
    sign_in,
)

ADMIN_PAGES = ["/dashboard", "/inbox", "/admin/teams", "/admin/canned", "/admin/users",
               "/admin/hours", "/admin/kb", "/admin/kb/catalog", "/admin/kb/intents",
               "/admin/kb/suggestions",
               "/admin/campaigns", "/admin/whatsapp", "/admin/llm", "/admin/analytics",
               "/admin/audit", "/admin/sequences", "/simulator", "/account"]
MONTH = {"es": re.compile(r"^\d{1,2} (ene|feb|mar|abr|may|jun|jul|ago|sept?|oct|nov|dic) \d{4}"),
         "en": re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}, \d{4}")}


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # a 3-second first-response target: the dashboard's "SLA at risk" shows within a test
    return Settings(
        env="test", data_dir=tmp_path_factory.mktemp("admin"), stalled_job_seconds=2,
        reconcile_interval_seconds=0.5, job_retry_base_seconds=1, worker_concurrency=4,
        log_level="WARNING", handoff=HandoffConfig(hours="", first_response_sla_minutes=0.05),
    )


async def login_api(base: str, email: str, password: str) -> int:
    async with httpx.AsyncClient(base_url=base) as http:
        response = await http.post("/api/v1/auth/login",
                                   json={"email": email, "password": password})
        return response.status_code


async def test_home_by_role_navigation_and_not_allowed(
    live: tuple[str, Runtime], browser: Browser
) -> None:
    base, runtime = live
    anonymous = await (await open_context(browser)).new_page()
    await anonymous.goto(f"{base}/")
    await expect(anonymous).to_have_url(f"{base}/login")
    await assert_accessible(anonymous, "login")
    await anonymous.context.close()

    homes = {"agent": "/inbox", "supervisor": "/dashboard", "admin": "/dashboard"}
    navs = {"agent": {"inbox"}, "supervisor": {"inbox", "dashboard", "team", "canned",
                                               "campaigns", "sequences"}}
    for role, home in homes.items():
        page = await sign_in(browser, base, await new_user(runtime, role))
        await expect(page).to_have_url(f"{base}{home}")
        shown = await page.locator(".site-nav a").evaluate_all(
            "links => links.map(a => a.dataset.testid.slice(4))")
        if role in navs:
            assert set(shown) == navs[role], (role, shown)
        else:
            assert {"users", "hours", "kb", "analytics", "audit", "whatsapp", "llm",
                    "sequences"} <= set(shown)
        await page.goto(f"{base}/")
        await expect(page).to_have_url(f"{base}{home}")
        if role != "admin":  # a page the role may not open says so, as a page
            for path in ("/admin/analytics", "/admin/kb", "/admin/users"):
                response = await page.goto(f"{base}{path}")
                assert response is not None and response.status == 403, path
                await expect(page.get_by_test_id("forbidden")).to_contain_text("no puede abrir")
                await expect(page.get_by_test_id("nav-inbox")).to_be_visible()
            await assert_accessible(page, f"forbidden-{role}")
        await page.context.close()


async def test_every_page_in_both_languages_is_accessible(
    live: tuple[str, Runtime], browser: Browser
) -> None:
    base, runtime = live
    email = await new_user(runtime, "admin", "Adela Admin")
    await runtime.sequences.create(SequenceDraft(  # the sequences page with its tables
        name="recordatorio", steps=(Step(delay_minutes=60, text="¿*Seguimos*?"),)), by=None)
    for lang, word in (("es", "Salir"), ("en", "Sign out")):
        page = await sign_in(browser, base, email, lang=lang)
        for path in ADMIN_PAGES:
            response = await page.goto(f"{base}{path}")
            assert response is not None and response.status == 200, path
            await page.wait_for_timeout(400)  # the page's first requests (live pages never idle)
            assert await page.evaluate("document.documentElement.lang") == lang
            await expect(page.get_by_test_id("logout")).to_have_text(word)
            if path == "/admin/audit":  # server-rendered dates in the reader's locale
                await expect(page.locator("time[data-format]").first).to_have_text(
                    MONTH[lang])
            await assert_accessible(page, f"{lang}{path.replace('/', '-')}")
        await page.context.close()


async def test_users_and_own_password(live: tuple[str, Runtime], browser: Browser) -> None:
    base, runtime = live
    admin = await sign_in(browser, base, await new_user(runtime, "admin", "Alma Admin"),
                          path="/admin/users")
    t = admin.get_by_test_id
    await t("u-name").fill("Nico Nuevo")
    await t("u-email").fill("no-es-correo")
    await t("u-password").fill("una-clave-larga")
    await t("u-create").click()
    await expect(t("create-msg")).to_contain_text("correo no válido")
    await t("u-email").fill("nico@seguros.mx")
    await t("u-create").click()
    await expect(t("create-msg")).to_contain_text("nico@seguros.mx")
    row = admin.locator('[data-testid=user-row][data-email="nico@seguros.mx"]')
    await expect(row.get_by_test_id("status")).to_have_text("activo")
    assert await login_api(base, "nico@seguros.mx", "una-clave-larga") == 200

    # reset a password: the new one works, the old one not
    await row.get_by_test_id("reset-password").fill("otra-clave-larga")
    await row.get_by_test_id("reset").click()
    await expect(t("msg")).to_contain_text("Nico Nuevo")
    assert await login_api(base, "nico@seguros.mx", "una-clave-larga") == 401
    assert await login_api(base, "nico@seguros.mx", "otra-clave-larga") == 200

    # deactivate: no more logins; reactivate
    await row.get_by_test_id("toggle-active").click()
    await expect(row.get_by_test_id("status")).to_have_text("desactivado")
    assert await login_api(base, "nico@seguros.mx", "otra-clave-larga") == 401
    await row.get_by_test_id("toggle-active").click()
    await expect(row.get_by_test_id("status")).to_have_text("activo")
    await row.get_by_test_id("role").select_option("supervisor")
    await expect(t("msg")).to_have_text("✓ Guardado")
    await shot(admin, "admin-users")
    await admin.context.close()

    # everyone changes their own password
    page = await (await open_context(browser)).new_page()
    await page.goto(f"{base}/account")
    await expect(page).to_have_url(f"{base}/login?next=/account")
    await page.fill("input[name=email]", "nico@seguros.mx")
    await page.fill("input[name=password]", "otra-clave-larga")
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{base}/account")
    t = page.get_by_test_id
    await t("p-current").fill("equivocada")
    await t("p-new").fill("mi-clave-nueva-1")
    await t("p-repeat").fill("mi-clave-nueva-1")
    await t("p-save").click()
    await expect(t("msg")).to_have_text("la contraseña actual no es correcta")
    await t("p-current").fill("otra-clave-larga")
    await t("p-repeat").fill("otra-cosa")
    await t("p-save").click()
    await expect(t("msg")).to_have_text("Las contraseñas nuevas no coinciden.")
    await t("p-repeat").fill("mi-clave-nueva-1")
    await t("p-save").click()
    await expect(page).to_have_url(re.compile(r"/login"))
    assert await login_api(base, "nico@seguros.mx", "mi-clave-nueva-1") == 200
    await page.context.close()


async def test_teams_canned_and_business_hours(
    live: tuple[str, Runtime], browser: Browser
) -> None:
    base, runtime = live
    agent_email = await new_user(runtime, "agent", "Tere Equipo")
    page = await sign_in(browser, base, await new_user(runtime, "admin", "Alba Admin"),
                         path="/admin/teams")
    t = page.get_by_test_id
    await t("t-name").fill("Siniestros")
    await t("t-skills").fill("siniestros, grúa")
    await t("t-create").click()
    team = page.locator('[data-testid=team][data-name="Siniestros"]')
    await expect(team.get_by_test_id("team-skills")).to_have_value("grúa, siniestros")
    await team.get_by_test_id("team-skills").fill("siniestros, grúa, robo")
    await team.locator("label", has_text="Tere Equipo").get_by_test_id("member").check()
    await team.get_by_test_id("team-save").click()
    await expect(team.locator(".msg")).to_have_text("✓ Guardado")
    stored = next(x for x in await runtime.inbox.teams() if x.name == "Siniestros")
    agent = next(a for a in await runtime.inbox.agents() if a.email == agent_email)
    assert stored.skills == ("grúa", "robo", "siniestros") and stored.members == (agent.id,)

    # canned replies and label colours
    await page.goto(f"{base}/admin/canned")
    await t("c-shortcut").fill("/bienvenida")
    await t("c-text").fill("¡Bienvenido, {nombre}!")
    await t("c-create").click()
    await expect(t("canned-row").filter(has_text="/bienvenida")).to_have_count(1)
    assert any(c.shortcut == "bienvenida" for c in await runtime.inbox.canned())
    await t("c-shortcut").fill("bienvenida")
    await t("c-text").fill("repetida")
    await t("c-create").click()
    await expect(t("create-msg")).to_contain_text("ya existe")
    await runtime.workspace.set_label_color("vip", "#1f6feb")
    await page.reload()
    colour = t("label-color").filter(has_text="vip").locator("input[type=color]")
    await colour.fill("#cf222e")
    await expect(page.locator("#label-msg")).to_have_text("✓ Guardado")
    assert [x.color for x in await runtime.workspace.labels() if x.name == "vip"] == ["#cf222e"]
    await t("canned-row").filter(has_text="/bienvenida").get_by_test_id("c-delete").click()
    await expect(t("canned-row").filter(has_text="/bienvenida")).to_have_count(0)

    # business hours and holidays: saved in the database, in force at once
    await page.goto(f"{base}/admin/hours")
    await expect(t("source")).to_contain_text("entorno")
    await expect(t("h-hours")).to_have_value("")
    await t("h-hours").fill("lun-vie 9-18")
    await t("h-save").click()
    await expect(t("msg")).to_contain_text("no se entiende el horario")
    await t("h-hours").fill("mon-fri 09:00-18:00; sat 10:00-14:00")
    await t("h-tz").fill("America/Bogota")
    await t("h-holidays").fill("2026-12-25\n2027-01-01")
    await t("h-save").click()
    await expect(t("msg")).to_have_text("✓ Guardado")
    await expect(t("source")).to_contain_text("guardado aquí")
    live_hours = runtime.schedule.live
    assert (live_hours.spec, live_hours.timezone, live_hours.holidays) == (
        "mon-fri 09:00-18:00; sat 10:00-14:00", "America/Bogota", ["2026-12-25", "2027-01-01"])
    assert runtime.handoff.describe_hours("es").startswith("lun-vie 09:00-18:00")
    await t("h-reset").click()
    await expect(t("source")).to_contain_text("entorno")
    assert runtime.schedule.live.spec == ""

    # a supervisor sees the teams but does not edit them
    sup = await sign_in(browser, base, await new_user(runtime, "supervisor"), path="/admin/teams",
                        context=await open_context(browser))
    await expect(sup.get_by_test_id("team-skills").first).to_be_disabled()
    await expect(sup.get_by_test_id("t-create")).to_have_count(0)
    for p in (page, sup):
        await p.context.close()


async def test_dashboard_live_and_reassign(live: tuple[str, Runtime], browser: Browser) -> None:
    base, runtime = live
    sup = await sign_in(browser, base, await new_user(runtime, "supervisor", "Susi"))
    await expect(sup).to_have_url(f"{base}/dashboard")
    await sup.wait_for_function("document.body.dataset.live === '1'")
    t = sup.get_by_test_id
    online = await runtime.auth.create_user(email="olga@seguros.mx", name="Olga En Línea",
                                            role=Role.AGENT, password=PASSWORD)
    await runtime.auth.create_user(email="rita@seguros.mx", name="Rita Reasignada",
                                   role=Role.AGENT, password=PASSWORD)
    for n in range(2):
        await customer(base, f"+5255880000{n:02d}", "quiero hablar con un asesor",
                       name=f"Dana {n}")
    await expect(t("k-queue")).to_have_text("2", timeout=10_000)  # live, no reload
    await expect(t("k-online")).to_have_text("0")
    await runtime.handoff.set_presence(online, online=True)
    await expect(t("k-online")).to_have_text("1", timeout=10_000)
    await asyncio.sleep(3.2)  # past the 3-second first-response target
    await sup.reload()
    await expect(t("risk-row")).to_have_count(2)
    await expect(t("k-risk")).to_have_text("2")
    await expect(t("k-wait")).to_contain_text("s")
    await assert_accessible(sup, "dashboard")
    row = t("risk-row").filter(has_text="Dana 0")
    await row.get_by_test_id("reassign").select_option(label="Rita Reasignada (0/3)")
    await expect(t("risk-row").filter(has_text="Dana 0")).to_contain_text("Rita Reasignada")
    await expect(t("agent-row").filter(has_text="Rita Reasignada")).to_contain_text("1/3")
    await shot(sup, "dashboard")
    await sup.context.close()
