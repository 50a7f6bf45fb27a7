"""The scheduler under a fake clock: window, per-number caps, bursts, nothing dropped."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from bot.campaigns import CampaignScheduler, Pacing, Window
from bot.campaigns.models import CampaignRecipient
from bot.clock import FakeClock
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.conversations import Message
from tests.campaigns.helpers import MX, csv_of, launched


@pytest.fixture
async def quiet_runtime(
    settings: Settings, database_url: str, redis_url: str, clock: FakeClock
) -> AsyncIterator[Runtime]:
    """A runtime on the fake clock with no worker: the test drives the scheduler."""
    rt = await Runtime.create(settings, database_url=database_url, redis_url=redis_url,
                              clock=clock)
    yield rt
    await rt.close()


def scheduler(rt: Runtime, clock: FakeClock, seed: int = 7) -> CampaignScheduler:
    return CampaignScheduler(sessions=rt.sessions, outbox=rt.outbox, clock=clock,
                             rng=random.Random(seed))


async def drive(
    rt: Runtime, clock: FakeClock, campaign_id: object, *, limit: int = 10_000
) -> list[datetime]:
    """Step until the campaign needs no more ticks, jumping the clock to each next time."""
    sched = scheduler(rt, clock)
    released: list[datetime] = []
    for _ in range(limit):
        step = await sched.step(campaign_id)  # type: ignore[arg-type]
        if step.conversation_id is not None:
            released.append(clock())
        if step.next_at is None:
            return released
        clock.now = max(clock.now, step.next_at)
    raise AssertionError("the campaign did not finish")


async def test_caps_window_and_bursts_hold_over_days_and_nothing_is_dropped(
    quiet_runtime: Runtime, clock: FakeClock
) -> None:
    rt = quiet_runtime
    clock.now = datetime(2026, 1, 2, 20, 0, tzinfo=UTC)  # Friday 14:00 in Mexico City
    window = Window(days=(0, 1, 2, 3, 4, 5), start=time(9), end=time(18),
                    timezone="America/Mexico_City")
    pacing = Pacing(per_hour=20, per_day=60, burst_min=5, burst_max=12,
                    gap_min_seconds=8, gap_max_seconds=25,
                    pause_min_seconds=120, pause_max_seconds=420)
    campaign_id = await launched(rt, csv_of(260), window=window, pacing=pacing)
    released = await drive(rt, clock, campaign_id)

    assert len(released) == 260
    for at in released:
        local = at.astimezone(MX)
        assert local.weekday() != 6 and time(9) <= local.time() < time(18), local
    per_day = Counter(at.astimezone(MX).date() for at in released)
    assert max(per_day.values()) <= 60
    # Friday afternoon, Saturday, Monday-Tuesday full; the rest on Wednesday (no Sunday)
    assert sorted(per_day.values()) == [20, 60, 60, 60, 60]
    for i, at in enumerate(released):
        in_hour = [t for t in released[: i + 1] if t > at - timedelta(hours=1)]
        assert len(in_hour) <= 20, at
    gaps = [(b - a).total_seconds() for a, b in zip(released, released[1:], strict=False)]
    assert min(gaps) >= 8
    # bursts: runs separated by less than the minimum pause are at most burst_max long
    run = longest = 1
    for gap in gaps:
        run = run + 1 if gap < 120 else 1
        longest = max(longest, run)
    assert 5 <= longest <= 12
    async with rt.sessions() as s:
        statuses = Counter(
            (await s.execute(select(CampaignRecipient.status)
                             .where(CampaignRecipient.campaign_id == campaign_id))).scalars()
        )
        per_recipient = (
            await s.execute(
                select(func.count(Message.id), func.count(func.distinct(Message.conversation_id)))
                .where(Message.author == "campaign")
            )
        ).one()
    assert statuses == {"queued": 260}
    assert tuple(per_recipient) == (260, 260)  # one message per recipient, nobody twice
    assert (await rt.campaigns.get(campaign_id)).status == "completed"


async def test_caps_are_per_number_across_campaigns(
    quiet_runtime: Runtime, clock: FakeClock
) -> None:
    rt = quiet_runtime
    clock.now = datetime(2026, 1, 5, 16, 0, tzinfo=UTC)  # Monday 10:00 in Mexico City
    window = Window(days=(0, 1, 2, 3, 4), start=time(9), end=time(18))
    pacing = Pacing(per_hour=10, per_day=1000, burst_min=50, burst_max=50, gap_min_seconds=1,
                    gap_max_seconds=1, pause_min_seconds=0, pause_max_seconds=0)
    first = await launched(rt, csv_of(8), window=window, pacing=pacing)
    second = await launched(rt, csv_of(8, start=100), window=window, pacing=pacing)
    sched = scheduler(rt, clock)
    released = 0
    for _ in range(40):  # both campaigns, interleaved, within the same hour
        for cid in (first, second):
            step = await sched.step(cid)
            released += step.conversation_id is not None
        clock.advance(seconds=1)
    assert released == 10  # the number's hourly cap, shared by both campaigns
    clock.advance(hours=1)
    for _ in range(40):
        for cid in (first, second):
            step = await sched.step(cid)
            released += step.conversation_id is not None
        clock.advance(seconds=1)
    assert released == 16
