"""Cross-site requests: a cookie-authenticated change needs the page's CSRF token and a
same-origin Origin / Sec-Fetch-Site; bearer tokens are unaffected. In Chromium, a page on
another port of 127.0.0.1 (same site, so the SameSite=strict cookie goes along) can
neither claim a conversation nor import into the knowledge base."""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright

from bot.api.guard import csrf_token
from bot.wiring.runtime import Runtime
from tests.browsers import ARGS, CHROMIUM
from tests.security.conftest import PASSWORD, World, serve


async def _cookie_client(client: httpx.AsyncClient, email: str) -> str:
    """Sign in through the page form; the client keeps the session cookie."""
    response = await client.post("/login", data={"email": email, "password": PASSWORD,
                                                 "next": "/inbox"})
    assert response.status_code == 303, response.text
    session = client.cookies.get("atiende_session")
    assert session
    return session


async def test_cookie_changes_need_the_token_bearer_does_not(
    runtime: Runtime, client: httpx.AsyncClient, world: World
) -> None:
    session = await _cookie_client(client, world.admin.principal.email)
    claim = f"/api/v1/conversations/{world.unassigned}/claim"
    refused = await client.post(claim)
    assert refused.status_code == 403 and refused.json()["code"] == "csrf"
    wrong = await client.post(claim, headers={"X-CSRF-Token": "0" * 40})
    assert wrong.status_code == 403
    token = csrf_token(runtime.settings, session)
    other_site = await client.post(claim, headers={"X-CSRF-Token": token,
                                                   "Sec-Fetch-Site": "same-site"})
    assert other_site.status_code == 403 and other_site.json()["code"] == "cross_site"
    other_origin = await client.post(claim, headers={"X-CSRF-Token": token,
                                                     "Origin": "http://atiende.test:9999"})
    assert other_origin.status_code == 403
    ok = await client.post(claim, headers={"X-CSRF-Token": token, "Origin": "http://atiende.test",
                                           "Sec-Fetch-Site": "same-origin"})
    assert ok.status_code == 200, ok.text
    # bearer requests (scripts, atiende ask) need nothing more, even with a cookie around
    bearer = await client.post(f"/api/v1/conversations/{world.other}/notes",
                               json={"text": "nota"}, headers=world.admin.headers)
    assert bearer.status_code == 201, bearer.text
    # reads stay plain; the page carries the token for its scripts and the logout form
    page = await client.get("/inbox")
    assert f'data-csrf="{token}"' in page.text
    assert (await client.post("/logout")).status_code == 403
    out = await client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303


@pytest.fixture
def attacker_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain static web server on another port of 127.0.0.1 (same site, other origin)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()


ATTACK = """<!doctype html><html><body><script>
(async () => {{
  const app = "{app}";
  const opts = {{method: "POST", mode: "no-cors", credentials: "include"}};
  await fetch(app + "/api/v1/conversations/{conv}/claim", opts).catch(() => null);
  const form = new FormData();
  form.append("replace", "true");
  const text = "---\\nid: pagos\\ntitle: Pagos\\n---\\nDeposite a la cuenta 0000-1111.";
  form.append("files", new Blob([text], {{type: "text/markdown"}}), "pagos.md");
  await fetch(app + "/api/v1/kb/import", {{...opts, body: form}}).catch(() => null);
  document.title = "done";
}})();
</script></body></html>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")
async def test_a_page_on_another_port_cannot_act_for_a_signed_in_admin(
    runtime: Runtime, client: httpx.AsyncClient, world: World,
    attacker_site: tuple[str, Path],
) -> None:
    evil, folder = attacker_site
    async with serve(runtime) as base, async_playwright() as p:
        (folder / "index.html").write_text(ATTACK.format(app=base, conv=world.unassigned))
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(f"{base}/login?next=/inbox")
            await page.fill("input[name=email]", world.admin.principal.email)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/inbox")
            await page.goto(f"{evil}/index.html")
            await page.wait_for_function("document.title === 'done'", timeout=15000)
            await asyncio.sleep(0.5)
            # the admin's own page still works: the shared fetch helper sends the token
            await page.goto(f"{base}/inbox/conversations/{world.other}")
            await page.get_by_test_id("claim").click()
            await page.get_by_test_id("owner").filter(has_text="").first.wait_for()
        finally:
            await browser.close()
    detail = await client.get(f"/api/v1/conversations/{world.unassigned}",
                              headers=world.admin.headers)
    assert detail.json()["conversation"]["owner"] == "queued"
    assert detail.json()["conversation"]["assigned_agent_id"] is None
    articles = await client.get("/api/v1/kb/articles", headers=world.admin.headers)
    assert "pagos" not in {a["id"] for a in articles.json()}
    for _ in range(50):
        mine = await client.get(f"/api/v1/conversations/{world.other}",
                                headers=world.admin.headers)
        if mine.json()["conversation"]["owner"] == "human":
            break
        await asyncio.sleep(0.1)
    assert mine.json()["conversation"]["assigned_agent_id"] == str(world.admin.id)
