"""The inbox list at scale: 10,000 conversations, the list API's latency, and how soon the
page is usable in a real headless Chromium (``atiende bench inbox``).

``seed_conversations`` writes a realistic mix in a few set-based statements (also used by
the page tests): most conversations with the bot, some queued, some with agents, some
resolved or closed; four messages each; labels on some; tickets on the handed-over ones.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import migrate
from bot.infra.embedded import EmbeddedServices
from bot.logs import configure_logging
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.roles import Role

SEED_SQL = [
    """INSERT INTO contacts (id, phone_e164, name, created_at)
       SELECT md5(:tag || 'contact' || i)::uuid, :prefix || lpad(i::text, 7, '0'),
              (ARRAY['Lupe','Juan','María','José','Ana','Luis','Rosa','Pedro'])[1 + i % 8]
              || ' ' || (ARRAY['Pérez','García','López','Hernández','Martínez'])[1 + i % 5]
              || ' ' || i, now()
       FROM generate_series(1, :n) i""",
    """INSERT INTO conversations (id, contact_id, channel, account, owner, owner_reason,
              owner_changed_at, assigned_agent_id, last_intent, last_inbound_at,
              last_message_at, created_at)
       SELECT md5(:tag || 'conv' || i)::uuid, md5(:tag || 'contact' || i)::uuid,
              CASE WHEN i % 3 = 0 THEN 'whatsapp' ELSE 'simulator' END,
              CASE WHEN i % 3 = 0 THEN '5215550000001' ELSE 'demo' END,
              CASE i % 20 WHEN 0 THEN 'queued' WHEN 1 THEN 'human' WHEN 2 THEN 'closed'
                          ELSE 'bot' END,
              CASE i % 20 WHEN 0 THEN 'customer_request' WHEN 1 THEN 'claimed'
                          WHEN 3 THEN 'resolved' ELSE NULL END,
              now() - (i * interval '37 seconds') - interval '5 minutes',
              CASE WHEN i % 20 = 1 AND cardinality(CAST(:agents AS uuid[])) > 0
                   THEN (CAST(:agents AS uuid[]))[1 + i % cardinality(CAST(:agents AS uuid[]))]
                   END,
              'question', now() - (i * interval '37 seconds'),
              now() - (i * interval '37 seconds'), now() - (i * interval '37 seconds')
       FROM generate_series(1, :n) i""",
    """INSERT INTO messages (id, conversation_id, direction, author, kind, channel, text,
              status, created_at)
       SELECT md5(:tag || 'msg' || i || '-' || k)::uuid, md5(:tag || 'conv' || i)::uuid,
              CASE WHEN k % 2 = 1 THEN 'in' ELSE 'out' END,
              CASE WHEN k % 2 = 1 THEN 'customer' ELSE 'bot' END, 'text',
              CASE WHEN i % 3 = 0 THEN 'whatsapp' ELSE 'simulator' END,
              CASE k WHEN 1 THEN 'Hola, buenas tardes'
                     WHEN 2 THEN '¡Hola! ¿En qué te puedo ayudar?'
                     WHEN 3 THEN 'Quiero saber de mi póliza P' || i || ' y el pago de ' ||
                                 (ARRAY['auto','casa','vida','gastos médicos'])[1 + i % 4]
                     ELSE 'Con gusto, te paso la información.' END,
              CASE WHEN k % 2 = 1 THEN 'processed' ELSE 'sent' END,
              now() - (i * interval '37 seconds') - ((4 - k) * interval '20 seconds')
       FROM generate_series(1, :n) i, generate_series(1, 4) k""",
    """INSERT INTO handoff_tickets (id, conversation_id, reason, intent, opened_at, closed_at,
              outcome)
       SELECT md5(:tag || 'ticket' || i)::uuid, md5(:tag || 'conv' || i)::uuid,
              'customer_request', 'human_request',
              now() - (i * interval '37 seconds') - interval '5 minutes',
              CASE WHEN i % 20 IN (2, 3) THEN now() - (i * interval '37 seconds') END,
              CASE i % 20 WHEN 2 THEN 'closed' WHEN 3 THEN 'resolved' END
       FROM generate_series(1, :n) i WHERE i % 20 IN (0, 1, 2, 3)""",
    """INSERT INTO conversation_labels (conversation_id, label)
       SELECT md5(:tag || 'conv' || i)::uuid, 'vip' FROM generate_series(1, :n) i
       WHERE i % 10 = 0
       UNION ALL
       SELECT md5(:tag || 'conv' || i)::uuid, 'renovación' FROM generate_series(1, :n) i
       WHERE i % 7 = 0""",
]


async def seed_conversations(
    sessions: async_sessionmaker[AsyncSession], count: int, *, tag: str = "bench",
    prefix: str = "+52155", agents: Sequence[uuid.UUID] = (),
) -> None:
    """``count`` conversations (contacts ``prefix`` + 7 digits, names "Lupe Pérez 17"…),
    four messages each; 1 in 20 queued, 1 in 20 with one of ``agents``, the rest mostly
    with the bot (some resolved, some closed)."""
    params = {"n": count, "tag": tag, "prefix": prefix, "agents": list(agents)}
    async with sessions() as session, session.begin():
        for statement in SEED_SQL:
            await session.execute(text(statement), params)
        await session.execute(text("ANALYZE contacts, conversations, messages, handoff_tickets,"
                                   " conversation_labels"))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


QUERIES = {
    "queue": {"status": "queued"},
    "mine": {"status": "mine"},
    "open": {"status": "open"},
    "all": {"status": "all"},
    "resolved": {"status": "resolved"},
    "search name": {"status": "all", "q": "Lupe Pérez 96"},
    "search phone": {"status": "all", "q": "55 000 4321"},
    "search text": {"status": "all", "q": "póliza P7315"},
    "label": {"status": "all", "label": "vip"},
    "number": {"status": "all", "account": "5215550000001"},
}
COUNTS = "tab counts"


async def _api_latencies(
    base: str, token: str, rounds: int
) -> tuple[list[float], dict[str, float]]:
    headers = {"Authorization": f"Bearer {token}"}
    every: list[float] = []
    per: dict[str, list[float]] = {k: [] for k in (*QUERIES, COUNTS)}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        for _ in range(2):  # warm-up, not measured
            for params in QUERIES.values():
                await http.get("/api/v1/conversations", params={**params, "limit": 50})
        for _ in range(rounds):
            for name, params in QUERIES.items():
                started = time.perf_counter()
                response = await http.get("/api/v1/conversations",
                                          params={**params, "limit": 50})
                elapsed = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                cursor = response.headers.get("x-next-cursor")
                every.append(elapsed)
                per[name].append(elapsed)
                if name == "all" and cursor:  # the next page too
                    started = time.perf_counter()
                    (await http.get("/api/v1/conversations", params={
                        **params, "limit": 50, "cursor": cursor})).raise_for_status()
                    every.append((time.perf_counter() - started) * 1000)
            # the tab counts and unread total the page asks for on load and on every event
            started = time.perf_counter()
            (await http.get("/api/v1/inbox/counts")).raise_for_status()
            per[COUNTS].append((time.perf_counter() - started) * 1000)
            every.append(per[COUNTS][-1])
    return every, {k: _pct(v, 0.95) for k, v in per.items()}


async def _page_usable(base: str, email: str, password: str, loads: int) -> list[float]:
    """Milliseconds from navigation start to the first rows shown (search field ready)."""
    from playwright.async_api import async_playwright  # a test/bench tool, not a runtime one

    chromium = shutil.which("chromium")
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, headless=True, args=args)
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(f"{base}/login?next=/inbox")
            await page.fill("input[name=email]", email)
            await page.fill("input[name=password]", password)
            await page.click("button[type=submit]")
            await page.wait_for_selector(".conv-link")
            found: list[float] = []
            for _ in range(loads):
                await page.goto(f"{base}/inbox?bench", wait_until="commit")
                await page.wait_for_selector(".conv-link")
                # the page's own mark, set when the first rows are on screen
                found.append(await page.evaluate(
                    "() => performance.getEntriesByName('atiende:list-ready')[0].startTime"))
            return found
        finally:
            await browser.close()


async def _report(base: str, password: str, rounds: int) -> str:
    lines = []
    for email in ("super@bench.mx", "agente@bench.mx"):
        async with httpx.AsyncClient(base_url=base) as http:
            token = (await http.post("/api/v1/auth/login", json={
                "email": email, "password": password})).json()["access_token"]
        every, per = await _api_latencies(base, token, rounds)
        role = "supervisor (sees all)" if email.startswith("super") else "agent"
        lines.append(
            f"  list API as {role}: p50 {_pct(every, 0.5):.1f} ms  "
            f"p95 {_pct(every, 0.95):.1f} ms  p99 {_pct(every, 0.99):.1f} ms  (n={len(every)})")
        lines.append("    p95 by query: " + ", ".join(f"{k} {v:.1f}" for k, v in per.items()))
    if shutil.which("chromium"):
        loads = await _page_usable(base, "super@bench.mx", password, 5)
        lines.append(
            f"  page usable (navigation start -> first rows, search ready), headless Chromium: "
            f"median {statistics.median(loads):.0f} ms, max {max(loads):.0f} ms (n={len(loads)})")
    else:
        lines.append("  page usable: skipped (no chromium on this machine)")
    return "\n".join(lines)


AppFactory = Callable[[Callable[[], Awaitable[Runtime]]], Any]


async def run_inbox_bench(
    settings: Settings, *, conversations: int, rounds: int, make_app: AppFactory
) -> str:
    """``make_app`` builds the ASGI app for a runtime (the CLI passes ``create_app``)."""
    import uvicorn

    services = EmbeddedServices(Path(tempfile.mkdtemp(prefix="atiende-bench-")), ephemeral=True)
    database_url, redis_url = services.start()
    try:
        migrate(database_url)
        configure_logging("WARNING", json=True)
        speech = settings.speech.model_copy(update={"warm_at_start": False})
        runtime = await Runtime.create(settings.model_copy(update={"speech": speech}),
                                       database_url=database_url, redis_url=redis_url)
        try:
            password = "bench-password-123"
            agent = await runtime.auth.create_user(email="agente@bench.mx", name="Agente",
                                                   role=Role.AGENT, password=password)
            await runtime.auth.create_user(email="super@bench.mx", name="Supervisora",
                                           role=Role.SUPERVISOR, password=password)
            started = time.perf_counter()
            await seed_conversations(runtime.sessions, conversations, agents=[agent.id])
            seeded = time.perf_counter() - started

            async def factory() -> Runtime:
                return runtime

            server = uvicorn.Server(uvicorn.Config(
                make_app(factory), host="127.0.0.1", port=0,
                log_level="warning", access_log=False, lifespan="on"))
            task = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.05)
            base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
            try:
                head = (f"inbox: {conversations} conversations, {conversations * 4} messages "
                        f"(seeded in {seeded:.1f} s); list API pages of 50")
                return head + "\n" + await _report(base, password, rounds)
            finally:
                server.should_exit = True
                await asyncio.wait_for(task, 20)
        finally:
            await runtime.close()
    finally:
        services.stop()
