"""Outbound pacing per WhatsApp number: rate (Redis token bucket), jitter, typing time,
quiet hours and a daily cap. A message that may not go now is not dropped: the outbox
keeps it pending and schedules the number's send job for when it may.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.infra.redis_adapter import TokenBucket
from bot.settings.channels import PacingConfig


@dataclass(frozen=True, slots=True)
class PaceDecision:
    """``send`` now after ``pause`` seconds (jitter + typing), or retry in ``delay`` seconds."""

    send: bool
    delay: float = 0.0
    pause: float = 0.0
    typing: float = 0.0
    reason: str = "ok"  # ok | rate | quiet_hours | daily_cap


class Pacer:
    """Decides when the next message of a number may go out."""

    def __init__(
        self,
        config: PacingConfig,
        *,
        bucket: TokenBucket,
        clock: Clock,
        timezone: str,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._bucket = bucket
        self._clock = clock
        self._tz = ZoneInfo(timezone)
        self._rng = rng or random.Random()

    def paces(self, channel: str) -> bool:
        return channel in self.config.channels

    def typing_seconds(self, text_length: int) -> float:
        c = self.config
        return min(c.typing_max_seconds,
                   max(c.typing_min_seconds, text_length / c.typing_chars_per_second))

    async def reserve(self, channel: str, account: str, text_length: int) -> PaceDecision:
        """Take a send slot for one message of ``account``, or say when to try again."""
        now = self._clock()
        local = now.astimezone(self._tz)
        quiet = self._quiet_left(local)
        if quiet is not None:
            return PaceDecision(False, delay=quiet, reason="quiet_hours")
        c = self.config
        grant = await self._bucket.take(
            f"{channel}:{account}", capacity=c.burst, per_second=c.messages_per_minute / 60,
            now=now.timestamp(), day=local.date().isoformat(), daily_cap=c.daily_cap,
        )
        if grant.outcome == "cap":
            midnight = datetime.combine(local.date() + timedelta(days=1), time(0), self._tz)
            return PaceDecision(False, delay=(midnight - local).total_seconds() + 1,
                                reason="daily_cap")
        if grant.outcome == "wait":
            return PaceDecision(False, delay=grant.wait_seconds, reason="rate")
        typing = self.typing_seconds(text_length)
        jitter = self._rng.uniform(0, c.jitter_seconds)
        return PaceDecision(True, pause=jitter + typing, typing=typing)

    def _quiet_left(self, local: datetime) -> float | None:
        start, end = self.config.quiet_start, self.config.quiet_end
        if start is None or end is None or start == end:
            return None
        now_t = local.time().replace(tzinfo=None)
        inside = start <= now_t < end if start < end else (now_t >= start or now_t < end)
        if not inside:
            return None
        end_day = local.date() if now_t < end else local.date() + timedelta(days=1)
        until = datetime.combine(end_day, end, self._tz)
        return max(1.0, (until - local).total_seconds())
