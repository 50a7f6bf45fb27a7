"""When a campaign may send: the schedule window (days, hours, time zone) and the pacing.

Pure value objects and functions of a given ``now``: the scheduler passes its clock in,
so tests drive days of sending with a fake clock.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Pacing", "Window", "WindowError"]


class WindowError(ValueError):
    """A schedule or pacing that cannot work (unknown time zone, empty window…)."""


@dataclass(frozen=True, slots=True)
class Window:
    """Local days (0 = Monday … 6 = Sunday) and hours [start, end) in ``timezone``."""

    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    start: time = time(9, 0)
    end: time = time(19, 0)
    timezone: str = "America/Mexico_City"

    def __post_init__(self) -> None:
        if not self.days or any(d < 0 or d > 6 for d in self.days):
            raise WindowError("days must be a non-empty list of 0 (Monday) … 6 (Sunday)")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise WindowError("start and end are local times of the window's time zone: no offset")
        if self.start >= self.end:
            raise WindowError("the window's start must be before its end (same day)")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise WindowError(f"unknown time zone {self.timezone!r}") from exc

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.zone)
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def next_open(self, now: datetime) -> datetime:
        """``now`` when the window is open, else the next moment it opens (UTC)."""
        if self.is_open(now):
            return now
        local = now.astimezone(self.zone)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            opens = datetime.combine(day, self.start, tzinfo=self.zone)
            if opens > local:
                return opens.astimezone(UTC)
        raise WindowError("the window never opens")  # unreachable with valid days

    def day_start(self, now: datetime) -> datetime:
        """Local midnight of ``now``'s day (daily caps count from here)."""
        local = now.astimezone(self.zone)
        return datetime.combine(local.date(), time(0), tzinfo=self.zone).astimezone(UTC)

    def next_day_open(self, now: datetime) -> datetime:
        """The first opening strictly after today (local), for a spent daily cap."""
        local = now.astimezone(self.zone)
        tomorrow = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=self.zone)
        return self.next_open(tomorrow.astimezone(UTC))

    def to_json(self) -> dict[str, Any]:
        return {
            "days": list(self.days), "start": self.start.isoformat(timespec="minutes"),
            "end": self.end.isoformat(timespec="auto"), "timezone": self.timezone,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        return cls(
            days=tuple(int(d) for d in data["days"]), start=time.fromisoformat(data["start"]),
            end=time.fromisoformat(data["end"]), timezone=str(data["timezone"]),
        )


@dataclass(frozen=True, slots=True)
class Pacing:
    """Per-number caps and the burst rhythm (defaults: the safe values contact centers use).

    Caps count campaign messages of the *number* (channel + account) across all its
    campaigns. Between two messages of a burst the scheduler waits ``gap`` seconds; after
    a burst of ``burst_min``–``burst_max`` messages it pauses ``pause`` seconds. The
    outbox's own per-number pacing (typing time, jitter) applies on top.
    """

    per_hour: int = 40
    per_day: int = 180
    burst_min: int = 5
    burst_max: int = 12
    gap_min_seconds: float = 8.0
    gap_max_seconds: float = 25.0
    pause_min_seconds: float = 120.0
    pause_max_seconds: float = 420.0

    def __post_init__(self) -> None:
        if self.per_hour < 1 or self.per_day < 1:
            raise WindowError("caps per hour and per day must be at least 1")
        if not 1 <= self.burst_min <= self.burst_max:
            raise WindowError("bursts need 1 <= burst_min <= burst_max")
        if not 0 <= self.gap_min_seconds <= self.gap_max_seconds:
            raise WindowError("gaps need 0 <= gap_min_seconds <= gap_max_seconds")
        if not 0 <= self.pause_min_seconds <= self.pause_max_seconds:
            raise WindowError("pauses need 0 <= pause_min_seconds <= pause_max_seconds")

    def burst_size(self, rng: random.Random) -> int:
        return rng.randint(self.burst_min, self.burst_max)

    def gap(self, rng: random.Random) -> timedelta:
        return timedelta(seconds=rng.uniform(self.gap_min_seconds, self.gap_max_seconds))

    def pause(self, rng: random.Random) -> timedelta:
        return timedelta(seconds=rng.uniform(self.pause_min_seconds, self.pause_max_seconds))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pacing:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
