"""``atiende campaigns bench``: a campaign with the safe default pacing, on a fake clock.

Runs on its own throwaway embedded PostgreSQL and Redis. Prints how long a list takes to
go out under the window and caps, what the busiest hour and day looked like, and what the
scheduler costs per released message (wall time, real database).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.campaigns.schedule import Pacing, Window
from bot.campaigns.service import CampaignDraft, CampaignScheduler
from bot.clock import FakeClock
from bot.db import migrate
from bot.infra.embedded import EmbeddedServices
from bot.logs import configure_logging
from bot.settings import Settings
from bot.wiring.runtime import Runtime


def _csv(n: int) -> bytes:
    rows = [f"55{20_000_000 + i:08d},Cliente {i},${100 + i}" for i in range(n)]
    return ("telefono,nombre,monto\n" + "\n".join(rows) + "\n").encode()


async def run_campaign_bench(settings: Settings, *, contacts: int) -> str:
    services = EmbeddedServices(Path(tempfile.mkdtemp(prefix="atiende-bench-")), ephemeral=True)
    database_url, redis_url = services.start()
    try:
        migrate(database_url)
        configure_logging("WARNING", json=True)
        clock = FakeClock(datetime(2026, 1, 5, 14, 0, tzinfo=UTC))  # Monday 08:00 in CDMX
        runtime = await Runtime.create(
            settings.model_copy(update={"log_level": "WARNING"}),
            database_url=database_url, redis_url=redis_url, clock=clock,
        )
        try:
            return await _simulate(runtime, clock, contacts)
        finally:
            await runtime.close()
    finally:
        services.stop()


async def _simulate(runtime: Runtime, clock: FakeClock, contacts: int) -> str:
    window, pacing = Window(), Pacing()
    cartera = await runtime.campaigns.import_list(name="bench", data=_csv(contacts),
                                                  created_by=None)
    campaign = await runtime.campaigns.create(
        CampaignDraft(name="bench", list_id=cartera.id, window=window, pacing=pacing,
                      variants=["Hola {nombre}, tu pago de {monto} vence pronto.",
                                "{nombre}, te recordamos tu pago de {monto}."]),
        created_by=None,
    )
    await runtime.campaigns.launch(campaign.id, by=None)
    scheduler = CampaignScheduler(sessions=runtime.sessions, outbox=runtime.outbox,
                                  clock=clock, rng=random.Random(1))
    started = clock()
    released: list[datetime] = []
    step_ms: list[float] = []
    while True:
        t0 = time.perf_counter()
        step = await scheduler.step(campaign.id)
        if step.conversation_id is not None:
            step_ms.append((time.perf_counter() - t0) * 1000)
            released.append(clock())
        if step.next_at is None:
            break
        clock.now = max(clock.now, step.next_at)
    per_day = Counter(at.astimezone(window.zone).date().isoformat() for at in released)
    busiest_hour = max(
        sum(1 for t in released if at - timedelta(hours=1) < t <= at) for at in released
    )
    gaps = [(b - a).total_seconds() for a, b in zip(released, released[1:], strict=False)]
    in_window = all(window.is_open(at) for at in released)
    progress = (await runtime.campaigns.get(campaign.id)).progress
    lines = [
        f"contacts: {contacts}  window: Mon-Sat 09:00-19:00 America/Mexico_City  "
        f"pacing: {pacing.per_hour}/h, {pacing.per_day}/day, bursts {pacing.burst_min}-"
        f"{pacing.burst_max}, gaps {pacing.gap_min_seconds:.0f}-{pacing.gap_max_seconds:.0f}s, "
        f"pauses {pacing.pause_min_seconds:.0f}-{pacing.pause_max_seconds:.0f}s",
        f"released: {len(released)}  waiting: {progress.waiting}  all inside the window: "
        f"{in_window}",
        f"simulated duration: {(released[-1] - started).total_seconds() / 86400:.2f} days "
        f"over {len(per_day)} sending days",
        "per day: " + ", ".join(f"{d} {n}" for d, n in sorted(per_day.items())),
        f"busiest rolling hour: {busiest_hour}  shortest gap: {min(gaps):.1f}s  "
        f"median gap: {statistics.median(gaps):.1f}s",
        f"scheduler cost per released message: median {statistics.median(step_ms):.1f} ms, "
        f"p95 {sorted(step_ms)[int(0.95 * (len(step_ms) - 1))]:.1f} ms (wall, real PostgreSQL)",
    ]
    return "\n".join(lines)
