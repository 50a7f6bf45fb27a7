"""Shared helpers for campaign tests: a list from CSV text, a launched campaign."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.campaigns import CampaignDraft, Pacing, Window
from bot.wiring.runtime import Runtime

MX = ZoneInfo("America/Mexico_City")
ALWAYS = Window(days=(0, 1, 2, 3, 4, 5, 6), start=time(0), end=time(23, 59, 59, 999999))
FAST = Pacing(per_hour=10_000, per_day=100_000, burst_min=1000, burst_max=1000,
              gap_min_seconds=0, gap_max_seconds=0, pause_min_seconds=0, pause_max_seconds=0)


def csv_of(n: int, *, start: int = 0) -> bytes:
    lines = ["telefono,nombre,monto"]
    lines += [f"55{10_000_000 + i:08d},Cliente {i},${100 + i}" for i in range(start, start + n)]
    return ("\n".join(lines) + "\n").encode()


def phone(i: int) -> str:
    return f"+5255{10_000_000 + i:08d}"


def other_day_window() -> tuple[Window, datetime]:
    """A window on a weekday that is not today (real clock), so a real worker's tick finds
    it closed, and a moment inside it for a fake clock."""
    today = datetime.now(MX).date()
    day = today + timedelta(days=3)
    window = Window(days=(day.weekday(),), start=time(9), end=time(18))
    return window, datetime.combine(day, time(10), tzinfo=MX).astimezone(UTC)


async def launched(
    runtime: Runtime, csv: bytes, *, variants: list[str] | None = None,
    window: Window = ALWAYS, pacing: Pacing = FAST, by: uuid.UUID | None = None,
) -> uuid.UUID:
    cartera = await runtime.campaigns.import_list(name="cartera", data=csv, created_by=by)
    draft = CampaignDraft(
        name="recordatorio", list_id=cartera.id,
        variants=variants or ["Hola {nombre}, tu pago de {monto} vence pronto."],
        window=window, pacing=pacing,
    )
    campaign = await runtime.campaigns.create(draft, created_by=by)
    await runtime.campaigns.launch(campaign.id, by=by)
    return campaign.id
