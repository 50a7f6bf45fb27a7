"""What learning from agents achieved, read from the record.

Definitions (for a range of business days):
- *gaps closed*: suggestions approved in the range (a new article, or a new section of
  one); *dismissed* likewise; *pending* and *customers waiting*: now;
- *answers*: customer messages in the range the bot answered (not handed over) citing an
  article that came from (or was extended by) an approved suggestion, after that
  approval; *customers answered*: the distinct customers behind them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.reports.analytics import Period

_DECIDED = text(
    "SELECT count(*) FILTER (WHERE status = 'approved') AS closed, "
    "count(*) FILTER (WHERE status = 'dismissed') AS dismissed FROM kb_suggestions "
    "WHERE decided_at >= :start AND decided_at < :end"
)
_PENDING = text(
    "SELECT count(DISTINCT s.id) AS pending, "
    "count(DISTINCT coalesce(i.contact_id, i.conversation_id)) AS waiting "
    "FROM kb_suggestions s JOIN kb_suggestion_items i ON i.suggestion_id = s.id "
    "WHERE s.status = 'pending'"
)
_ANSWERED = text(
    "SELECT count(*) AS answers, count(DISTINCT c.contact_id) AS customers "
    "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
    "WHERE m.direction = 'in' AND m.status = 'processed' AND NOT coalesce(m.escalated, false) "
    "AND m.created_at >= :start AND m.created_at < :end AND EXISTS ("
    "SELECT 1 FROM kb_suggestions s WHERE s.status = 'approved' AND s.article_id IS NOT NULL "
    "AND m.sources ? s.article_id AND m.created_at >= s.decided_at)"
)


@dataclass(frozen=True, slots=True)
class Figures:
    start: date
    end: date
    gaps_closed: int
    dismissed: int
    pending: int
    customers_waiting: int
    answers: int
    customers_answered: int


class LearningFigures:
    """The figures above for a range (default: the last 30 days)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], timezone: str) -> None:
        self._sessions = sessions
        self._timezone = timezone

    async def figures(self, start: date | None = None, end: date | None = None, *,
                      today: datetime | None = None) -> Figures:
        now = today or datetime.now(ZoneInfo(self._timezone))
        end = end or now.astimezone(ZoneInfo(self._timezone)).date()
        start = start or end - timedelta(days=29)
        if start > end:
            start, end = end, start
        low, high = Period(start, end, timezone=self._timezone).bounds()
        bounds = {"start": low, "end": high}
        async with self._sessions() as session:
            decided = (await session.execute(_DECIDED, bounds)).one()
            pending = (await session.execute(_PENDING)).one()
            answered = (await session.execute(_ANSWERED, bounds)).one()
        return Figures(start, end, int(decided.closed), int(decided.dismissed),
                       int(pending.pending), int(pending.waiting), int(answered.answers),
                       int(answered.customers))
