"""Business hours and holidays edited by admins, stored in the database.

Until an admin saves them, the environment's ``ATIENDE_HANDOFF__HOURS``, ``__TIMEZONE``
and ``__HOLIDAYS`` are in force. Every process holds one ``LiveHours``; ``refresh``
reloads it (the runtime calls it every few seconds, and right after a save).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.config import HandoffConfig
from handoff.errors import InvalidInput
from handoff.hours import BusinessHours, InvalidHours, LiveHours
from handoff.tables import BusinessSchedule


@dataclass(frozen=True, slots=True)
class ScheduleView:
    hours: str
    timezone: str
    holidays: tuple[str, ...]
    source: str  # "database" (edited by an admin) | "environment" (the defaults)
    updated_by: str | None


class ScheduleBook:
    """Reads and saves the business schedule; keeps ``live`` in step with the database."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, config: HandoffConfig,
        live: LiveHours,
    ) -> None:
        self._sessions = sessions
        self._config = config
        self.live = live

    async def current(self) -> ScheduleView:
        async with self._sessions() as session:
            row = await session.get(BusinessSchedule, 1)
        if row is None:
            c = self._config
            return ScheduleView(c.hours, c.timezone, tuple(c.holidays), "environment", None)
        return ScheduleView(row.hours, row.timezone, tuple(row.holidays), "database",
                            row.updated_by)

    async def save(
        self, *, hours: str, timezone: str, holidays: list[str], by: str
    ) -> ScheduleView:
        """InvalidInput (nothing saved) when the hours, zone or a date cannot be read."""
        hours = "; ".join(p.strip() for p in hours.split(";") if p.strip())
        days = sorted({_holiday(h) for h in holidays if h.strip()})
        try:
            ZoneInfo(timezone)
            BusinessHours.parse(hours, timezone, days)
        except (InvalidHours, ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInput("invalid_hours", str(exc) or "unknown time zone") from exc
        values = {"hours": hours, "timezone": timezone, "holidays": days, "updated_by": by}
        async with self._sessions() as session, session.begin():
            await session.execute(
                insert(BusinessSchedule).values(id=1, **values)
                .on_conflict_do_update(index_elements=["id"], set_=values)
            )
        self.live.replace(hours, timezone, days)
        return await self.current()

    async def reset(self) -> ScheduleView:
        """Back to the environment's defaults."""
        async with self._sessions() as session, session.begin():
            row = await session.get(BusinessSchedule, 1)
            if row is not None:
                await session.delete(row)
        c = self._config
        self.live.replace(c.hours, c.timezone, list(c.holidays))
        return await self.current()

    async def refresh(self) -> None:
        """Load what is saved into ``live`` (a bad or unreachable row keeps what is in force)."""
        try:
            async with self._sessions() as session:
                row = (await session.execute(select(BusinessSchedule))).scalar_one_or_none()
        except SQLAlchemyError:
            return
        c = self._config
        spec, zone, days = (
            (row.hours, row.timezone, list(row.holidays)) if row
            else (c.hours, c.timezone, list(c.holidays))
        )
        if (spec, zone, days) != (self.live.spec, self.live.timezone, self.live.holidays):
            with contextlib.suppress(InvalidHours, ValueError):
                self.live.replace(spec, zone, days)

    async def watch(self, every_seconds: float = 5.0) -> None:
        """Refresh forever (edits saved by another process reach this one)."""
        while True:
            await asyncio.sleep(every_seconds)
            await self.refresh()


def _holiday(value: str) -> str:
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError as exc:
        raise InvalidInput(
            "invalid_holiday", f"not a date (YYYY-MM-DD): {value.strip()!r}"
        ) from exc


__all__ = ["ScheduleBook", "ScheduleView"]
