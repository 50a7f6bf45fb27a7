"""Analytics for admins: a JSON report, a dashboard page with SVG charts, CSV export."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from datetime import date, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from bot.api.auth import AdminDep, Principal, Role, require_page_role
from bot.api.deps import RuntimeDep
from bot.api.pages import render, request_lang
from bot.reports.analytics import Analytics, Period, Report
from bot.reports.charts import bar_chart, hbar_chart
from bot.reports.learning import Figures, LearningFigures

router = APIRouter(prefix="/api/v1/admin/analytics", tags=["admin"])
pages = APIRouter(include_in_schema=False)
AdminPage = Annotated[Principal, Depends(require_page_role(Role.ADMIN))]

MAX_DAYS = 366
Table = Literal["days", "intents", "reasons", "hours", "gaps", "llm", "transcriptions"]


def _analytics(runtime: Any) -> Analytics:
    config = runtime.settings.handoff
    return Analytics(
        runtime.sessions,
        first_response_sla_seconds=config.first_response_sla_minutes * 60,
        resolution_sla_seconds=config.resolution_sla_minutes * 60,
    )


async def _learned(runtime: Any, period: Period) -> Figures:
    """Gaps closed and customers answered by articles from suggestions, same days."""
    return await LearningFigures(runtime.sessions, runtime.settings.business_timezone
                                 ).figures(period.start, period.end)


def _period(runtime: Any, start: date | None, end: date | None, channel: str | None) -> Period:
    today = runtime.clock().astimezone(ZoneInfo(runtime.settings.business_timezone)).date()
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end:
        raise _invalid("start", "start must not be after end")
    if (end - start).days >= MAX_DAYS:
        raise _invalid("start", f"at most {MAX_DAYS} days per report")
    return Period(start, end, channel or None, runtime.settings.business_timezone)


def _invalid(field: str, reason: str) -> HTTPException:
    """A 422 in the documented ``HTTPValidationError`` shape (found by schemathesis)."""
    return HTTPException(422, [{"loc": ["query", field], "msg": reason, "type": "value_error"}])


StartQ = Annotated[date | None, Query(description="first day (business time zone)")]
EndQ = Annotated[date | None, Query(description="last day, included")]
ChannelQ = Annotated[str | None, Query(max_length=32)]


@router.get("")
async def report_json(
    runtime: RuntimeDep, admin: AdminDep, start: StartQ = None, end: EndQ = None,
    channel: ChannelQ = None,
) -> dict[str, Any]:
    """The report for a date range and channel (see bot/analytics.py for definitions)."""
    period = _period(runtime, start, end, channel)
    report = await _analytics(runtime).report(period)
    body = asdict(report)
    body["escalation_rate"] = report.escalation_rate
    body["deflection"] = report.deflection
    body["learning"] = asdict(await _learned(runtime, period))  # every channel
    return body


def _rows(report: Report, table: Table) -> tuple[list[str], list[list[object]]]:
    if table == "days":
        return (["day", "conversations", "inbound", "outbound", "escalations"],
                [[d.day.isoformat(), d.conversations, d.inbound, d.outbound, d.escalations]
                 for d in report.days])
    if table == "intents":
        return (["intent", "answered", "deflected", "deflection"],
                [[i.intent, i.answered, i.deflected, f"{i.deflection:.4f}"]
                 for i in report.intents])
    if table == "reasons":
        return ["reason", "conversations"], [[k, v] for k, v in report.reasons.items()]
    if table == "hours":
        return ["hour", "inbound"], [[h, n] for h, n in enumerate(report.hours)]
    if table == "llm":
        return (["provider", "model", "answered", "prompt_tokens", "completion_tokens",
                 "cost_usd", "p50_latency_ms", "timeouts", "rate_limited", "errors"],
                [[m.provider, m.model, m.answered, m.prompt_tokens, m.completion_tokens,
                  f"{m.cost_usd:.6f}", "" if m.p50_latency_ms is None else
                  f"{m.p50_latency_ms:.1f}", m.timeouts, m.rate_limited, m.errors]
                 for m in (report.llm.models if report.llm else [])])
    if table == "transcriptions":
        return (["backend", "notes", "failed", "audio_minutes", "p50_elapsed_seconds"],
                [[t.backend, t.notes, t.failed, f"{t.audio_minutes:.3f}",
                  "" if t.p50_elapsed_seconds is None else f"{t.p50_elapsed_seconds:.2f}"]
                 for t in report.transcriptions])
    return (["words", "count", "examples"],
            [[g.key, g.count, " | ".join(g.examples)] for g in report.gaps])


def _usage_charts(report: Report, L: dict[str, str]) -> dict[str, Any]:
    models = report.llm.models if report.llm else []
    name = [f"{m.provider} · {m.model}" for m in models]
    return {
        "llm_answered": hbar_chart(
            [(n, float(m.answered)) for n, m in zip(name, models, strict=True)],
            title=L["llm_answered"]),
        "llm_failed": hbar_chart(
            [(n, float(m.failed_attempts)) for n, m in zip(name, models, strict=True)],
            title=L["llm_failed"]),
        "llm_cost": hbar_chart(
            [(n, m.cost_usd) for n, m in zip(name, models, strict=True)],
            title=L["llm_cost_model"], value_format="${:.4f}"),
        "voice_notes": hbar_chart(
            [(t.backend, float(t.notes)) for t in report.transcriptions], title=L["voice_notes"]),
        "audio_minutes": hbar_chart(
            [(t.backend, t.audio_minutes) for t in report.transcriptions],
            title=L["audio_minutes"], value_format="{:.1f}"),
    }


def _safe_cell(value: object) -> object:
    # a customer's text must not become a formula in a spreadsheet
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@pages.get("/admin/analytics/export.csv")
async def export_csv(
    runtime: RuntimeDep, admin: AdminPage, table: Table = "days", start: StartQ = None,
    end: EndQ = None, channel: ChannelQ = None,
) -> Response:
    period = _period(runtime, start, end, channel)
    report = await _analytics(runtime).report(period)
    header, rows = _rows(report, table)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([[_safe_cell(v) for v in row] for row in rows])
    name = f"atiende-{table}-{period.start}-{period.end}.csv"
    return Response(
        out.getvalue(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@pages.get("/admin/analytics", response_class=HTMLResponse)
async def dashboard(
    request: Request, runtime: RuntimeDep, admin: AdminPage, start: StartQ = None,
    end: EndQ = None, channel: ChannelQ = None,
    lang: Annotated[Literal["es", "en"] | None, Query(description="overrides the page language")]
    = None,
) -> HTMLResponse:
    period = _period(runtime, start, end, channel)
    report = await _analytics(runtime).report(period)
    chosen = lang or request_lang(request)
    L = request.app.state.texts.areas["analytics"][chosen]
    labels = [d.day.strftime("%d/%m") for d in report.days]
    charts = {
        "per_day": bar_chart(
            labels, [(L["inbound"], [d.inbound for d in report.days]),
                     (L["outbound"], [d.outbound for d in report.days])],
            title=L["per_day"],
        ),
        "conversations": bar_chart(
            labels, [(L["conversations"], [d.conversations for d in report.days])],
            title=L["conversations"],
        ),
        "per_intent": hbar_chart(
            [(f"{i.intent} ({i.answered} {L['answered']})", 100 * i.deflection)
             for i in report.intents],
            title=L["per_intent"], value_format="{:.0f}%", maximum=100,
        ),
        "reasons": hbar_chart(list(report.reasons.items()), title=L["reasons"]),
        "csat": hbar_chart(
            [(f"{k} ★", float(v)) for k, v in sorted(report.human.csat_scores.items())]
            if report.human else [],
            title=L["csat"],
        ),
        "hours": bar_chart(
            [f"{h:02d}" for h in range(24)], [(L["inbound"], report.hours)], title=L["hours"]
        ),
        **_usage_charts(report, L),
    }
    query = {"start": period.start.isoformat(), "end": period.end.isoformat(),
             "channel": period.channel or ""}
    return render(request, "analytics.html", user=admin, title="nav.analytics",
                  context={"r": report, "L": L, "charts": charts, "q": query, "lang": chosen,
                           "learned": await _learned(runtime, period)})
