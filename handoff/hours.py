"""Business hours: open or not, the next opening, and business time between two instants."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_SPEC = re.compile(r"^\s*([a-z]{3})(?:-([a-z]{3}))?\s+(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})\s*$")


class InvalidHours(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Weekly opening windows in one time zone, minus holidays. No windows = always open."""

    zone: ZoneInfo
    windows: dict[int, tuple[tuple[time, time], ...]]
    holidays: frozenset[date] = frozenset()

    @classmethod
    def parse(cls, spec: str, timezone: str, holidays: list[str] | None = None) -> BusinessHours:
        windows: dict[int, list[tuple[time, time]]] = {}
        for part in filter(None, (p.strip() for p in spec.lower().split(";"))):
            m = _SPEC.match(part)
            if not m or m.group(1) not in _DAYS or (m.group(2) and m.group(2) not in _DAYS):
                raise InvalidHours(
                    f"cannot read business hours {part!r} (e.g. 'mon-fri 09:00-18:00')"
                )
            first = _DAYS.index(m.group(1))
            last = _DAYS.index(m.group(2)) if m.group(2) else first
            start = time(int(m.group(3)), int(m.group(4)))
            end = time(23, 59, 59) if m.group(5) == "24" else time(int(m.group(5)), int(m.group(6)))
            if end <= start:
                raise InvalidHours(f"closing time before opening time in {part!r}")
            for day in range(first, last + 1):
                windows.setdefault(day, []).append((start, end))
        return cls(
            ZoneInfo(timezone),
            {d: tuple(sorted(w)) for d, w in windows.items()},
            frozenset(date.fromisoformat(h) for h in holidays or []),
        )

    @property
    def always_open(self) -> bool:
        return not self.windows

    def _day_windows(self, day: date) -> list[tuple[datetime, datetime]]:
        if day in self.holidays:
            return []
        return [
            (datetime.combine(day, s, self.zone), datetime.combine(day, e, self.zone))
            for s, e in self.windows.get(day.weekday(), ())
        ]

    def is_open(self, at: datetime) -> bool:
        if self.always_open:
            return True
        local = at.astimezone(self.zone)
        return any(s <= local < e for s, e in self._day_windows(local.date()))

    def next_open(self, at: datetime) -> datetime | None:
        """The next opening at or after ``at`` (``at`` itself when open); None if never."""
        if self.is_open(at):
            return at
        local = at.astimezone(self.zone)
        for offset in range(0, 370):
            for start, _end in self._day_windows(local.date() + timedelta(days=offset)):
                if start > local:
                    return start.astimezone(UTC)
        return None

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Seconds between ``start`` and ``end`` that fall inside business hours."""
        if end <= start:
            return 0.0
        if self.always_open:
            return (end - start).total_seconds()
        total = 0.0
        day = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        while day <= last:
            for s, e in self._day_windows(day):
                lo, hi = max(s, start), min(e, end)
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += timedelta(days=1)
        return total


class LiveHours:
    """The business hours in force, replaced in place when an admin edits them.

    One instance is shared by every part of a process (SLA timers, out-of-office notices,
    the inbox); ``handoff.schedule.ScheduleBook`` reloads it from the database.
    """

    def __init__(self, spec: str, timezone: str, holidays: list[str] | None = None) -> None:
        self.spec = spec
        self.timezone = timezone
        self.holidays = list(holidays or [])
        self._hours = BusinessHours.parse(spec, timezone, self.holidays)

    def replace(self, spec: str, timezone: str, holidays: list[str]) -> None:
        """Parse first (InvalidHours leaves the hours in force untouched), then swap."""
        parsed = BusinessHours.parse(spec, timezone, holidays)
        self._hours, self.spec, self.timezone, self.holidays = (
            parsed, spec, timezone, list(holidays)
        )

    @property
    def zone(self) -> ZoneInfo:
        return self._hours.zone

    @property
    def always_open(self) -> bool:
        return self._hours.always_open

    def is_open(self, at: datetime) -> bool:
        return self._hours.is_open(at)

    def next_open(self, at: datetime) -> datetime | None:
        return self._hours.next_open(at)

    def business_seconds(self, start: datetime, end: datetime) -> float:
        return self._hours.business_seconds(start, end)
