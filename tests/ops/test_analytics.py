"""Analytics from the record: numbers checked by hand on a small, known history."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from bot.answering.responder import Persona, RuleResponder
from bot.reports.analytics import Analytics, Period, cluster_questions
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from knowledge.embeddings import Embedder
from tests.conftest import ask


@pytest.fixture
async def runtime(
    settings: Settings, database_url: str, redis_url: str, kb_embedder: Embedder
) -> AsyncIterator[Runtime]:
    """The history below is written for the rules-only responder (greetings, thanks, human
    requests, an honest holding reply), so its numbers can be checked by hand; the
    analytics only read the record and do not depend on which responder wrote it."""
    rt = await Runtime.create(
        settings, database_url=database_url, redis_url=redis_url, embedder=kb_embedder,
        responder=RuleResponder(Persona("Atiende", "Seguros Atiende")),
    )
    rt.start_worker()
    yield rt
    await rt.close()


async def _history(client: httpx.AsyncClient, database_url: str) -> None:
    # A: greeting + thanks, bot only
    await ask(client, "holaa buenas tardes", phone="+5215510000001")
    await ask(client, "muchas graciaaas", phone="+5215510000001")
    # B: a question the bot cannot answer, asked three ways, then a human request
    await ask(client, "cuanto cuesta el seguro de auto?", phone="+5215510000002")
    await ask(client, "cuánto cuesta el seguro para auto", phone="+5215510000003")
    await ask(client, "oye y cuanto cuesta seguro de auto 🚗", phone="+5215510000004")
    await ask(client, "<script>alert(1)</script> cancelar póliza", phone="+5215510000005")
    escalated = await ask(client, "quiero hablar con un asesor", phone="+5215510000002")
    assert escalated["escalated"] is True
    # an agent answers conversation B (the inbox writes rows like this)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO messages (id, conversation_id, direction, author, kind, channel, text, "
            "status, created_at) VALUES (%s, %s, 'out', 'agent', 'text', 'simulator', "
            "'Hola, soy Ana', 'sent', clock_timestamp() + interval '90 seconds')",
            (uuid.uuid4(), uuid.UUID(str(escalated["conversation_id"]))),
        )


async def test_report_numbers_match_the_history(
    client: httpx.AsyncClient, runtime: Runtime, database_url: str
) -> None:
    await _history(client, database_url)
    today = runtime.clock().astimezone(ZoneInfo(runtime.settings.business_timezone)).date()
    report = await Analytics(runtime.sessions).report(
        Period(today, today, None, runtime.settings.business_timezone)
    )
    assert report.active_conversations == 5
    assert report.inbound == 7
    assert report.escalated_conversations == 1 and report.escalation_rate == 0.2
    assert report.reasons == {"customer_request": 1}
    assert sum(report.hours) == 7
    assert [(d.inbound, d.outbound, d.escalations) for d in report.days] == [(7, 8, 1)]
    by_intent = {i.intent: (i.answered, i.deflected) for i in report.intents}
    # conversation B needed a human: its "other" and "human" messages are not deflected
    assert by_intent == {
        "greeting": (1, 1), "thanks": (1, 1), "other": (4, 3), "human_request": (1, 0),
    }
    assert report.bot_first_response.count == 7
    assert report.human_first_response.count == 1
    assert 80 < (report.human_first_response.p50_seconds or 0) < 100
    assert report.human is not None  # handoff tickets: the inbox computes their times
    assert report.human.tickets == 1 and report.human.csat_answers == 0
    top = report.gaps[0]
    assert top.count == 3 and "cuesta" in top.key and "auto" in top.key
    # a rated, resolved ticket, as the inbox records it
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE handoff_tickets SET first_response_seconds = 1200, "
            "resolution_seconds = 3000, csat_score = 4, closed_at = now()"
        )
    rated = await Analytics(runtime.sessions, first_response_sla_seconds=900).report(
        Period(today, today, None, runtime.settings.business_timezone)
    )
    assert rated.human is not None
    assert rated.human.first_response_breaches == 1 and rated.human.resolution_breaches == 0
    assert rated.human.csat_average == 4.0 and rated.human.csat_scores == {4: 1}
    # another channel: nothing
    other = await Analytics(runtime.sessions).report(
        Period(today, today, "whatsapp-cloud", runtime.settings.business_timezone)
    )
    assert other.active_conversations == 0 and other.inbound == 0


def test_clusters_group_variants_and_ignore_filler() -> None:
    clusters = cluster_questions([
        "cuanto cuesta el seguro de auto?", "Cuánto cuesta seguro de AUTO", "horario de sucursal",
        "¿qué horario tiene la sucursal?", "hola",
    ])
    assert [c.count for c in clusters[:2]] == [2, 2]


async def test_dashboard_is_admin_only_escaped_and_exports_csv(
    client: httpx.AsyncClient, runtime: Runtime, database_url: str, auth_headers  # type: ignore[no-untyped-def]
) -> None:
    await _history(client, database_url)
    anonymous = await client.get("/admin/analytics")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    agent = await auth_headers("agent")
    assert (await client.get("/admin/analytics", headers=agent)).status_code == 403
    assert (await client.get("/api/v1/admin/analytics", headers=agent)).status_code == 403
    admin = await auth_headers("admin")
    page = await client.get("/admin/analytics", headers=admin)
    assert page.status_code == 200
    html = page.text
    assert html.count("<svg") >= 4 and "Analítica" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert 'id="kpi-escalation">20%' in html
    english = await client.get("/admin/analytics", headers=admin, params={"lang": "en"})
    assert "Busiest hours" in english.text
    api = await client.get("/api/v1/admin/analytics", headers=admin)
    assert api.status_code == 200 and api.json()["inbound"] == 7
    bad = await client.get(
        "/api/v1/admin/analytics", headers=admin,
        params={"start": "2026-02-01", "end": "2026-01-01"},
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["msg"].startswith("start must")
    export = await client.get(
        "/admin/analytics/export.csv", headers=admin, params={"table": "intents"}
    )
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0] == ["intent", "answered", "deflected", "deflection"]
    assert ["other", "4", "3", "0.7500"] in rows
    gaps = await client.get("/admin/analytics/export.csv", headers=admin, params={"table": "gaps"})
    assert "cuesta" in gaps.text
