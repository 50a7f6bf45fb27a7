"""Retention: data older than its setting is removed by a periodic job, in bounded
batches (each its own short transaction, a pause between them, a time budget per run).

Kinds (``ATIENDE_PRIVACY__…``): ``media`` (the files of voice notes, images and
documents; the message keeps its type and size), ``transcripts``, ``texts`` (message
texts and provider payloads, internal notes, webhook payloads, the text of a sequence step
left to do by hand, the customers' questions and the replies to them in knowledge
suggestions still pending or dismissed). Rows stay, so analytics keep their counts (a
pending suggestion left without questions goes, as in an erasure: it counted only
while it had some). Each kind keeps a watermark (``privacy_retention``): a run starts
where the last one stopped instead of re-reading what it already purged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import AtiendeError
from bot.logs import get_logger
from bot.media import MediaStore
from bot.privacy.metrics import PrivacyMetrics
from bot.privacy.values import RetentionReport
from bot.settings.privacy import PrivacySettings

__all__ = ["Retention"]

log = get_logger("atiende.privacy")


@dataclass(frozen=True, slots=True)
class _Kind:
    what: str
    days: int | None
    purge: Callable[[AsyncSession, datetime, datetime], Awaitable[tuple[int, int, Any]]]


# one batch of messages of a kind, oldest first, from the watermark up to the cutoff
_CANDIDATES = """
    SELECT id FROM messages
    WHERE created_at >= :since AND created_at < :cutoff AND ({pending})
    ORDER BY created_at LIMIT :n FOR UPDATE SKIP LOCKED
"""

# knowledge suggestions: the items (one customer's masked question and the replies to it)
# of suggestions still pending or dismissed; an approved one's questions are the article's
# example questions now, the business's own knowledge, and stay
_OLD_ITEMS = text(
    "DELETE FROM kb_suggestion_items WHERE id IN (SELECT i.id FROM kb_suggestion_items i "
    "JOIN kb_suggestions s ON s.id = i.suggestion_id WHERE s.status IN ('pending', "
    "'dismissed') AND i.asked_at < :cutoff ORDER BY i.asked_at LIMIT :n FOR UPDATE OF s, i) "
    "RETURNING suggestion_id, asked_at"
)
# a pending suggestion left without items goes (as an erasure does); a dismissed one stays
# for the figures (decided_at) without its draft
_EMPTIED = text(
    "DELETE FROM kb_suggestions s WHERE s.id = ANY(:ids) AND s.status = 'pending' "
    "AND NOT EXISTS (SELECT 1 FROM kb_suggestion_items i WHERE i.suggestion_id = s.id)"
)
# the rest: means and counts of the items left, and no draft quoting the items that went
# (a pending one is drafted again from what is left)
_AFTER_PURGE = text(
    "UPDATE kb_suggestions s SET question_mean = a.q, reply_mean = a.r, items = a.n, "
    "customers = a.c, last_asked_at = coalesce(a.last, s.last_asked_at), draft_title = NULL, "
    "draft_body = NULL, draft_model = NULL, draft_items = 0, updated_at = now() FROM ("
    "SELECT k.id, avg(i.question_vec) AS q, avg(i.reply_vec) AS r, count(i.id) AS n, "
    "count(DISTINCT coalesce(i.contact_id, i.conversation_id)) AS c, max(i.asked_at) AS last "
    "FROM kb_suggestions k LEFT JOIN kb_suggestion_items i ON i.suggestion_id = k.id "
    "WHERE k.id = ANY(:ids) GROUP BY k.id) a WHERE s.id = a.id "
    "AND s.status IN ('pending', 'dismissed')"
)


class Retention:
    """Removes what is older than the retention settings, a bounded batch at a time."""

    def __init__(
        self, *, sessions: async_sessionmaker[AsyncSession], media: MediaStore,
        settings: PrivacySettings, metrics: PrivacyMetrics,
    ) -> None:
        self._sessions = sessions
        self._media = media
        self._settings = settings
        self._metrics = metrics

    def _kinds(self) -> list[_Kind]:
        s = self._settings
        return [
            _Kind("media", s.media_days, self._purge_media),
            _Kind("transcripts", s.transcript_days, self._purge_transcripts),
            _Kind("texts", s.text_days, self._purge_texts),
            _Kind("notes", s.text_days, self._purge_notes),
            _Kind("webhook_payloads", s.text_days, self._purge_deliveries),
            _Kind("sequence_tasks", s.text_days, self._purge_tasks),
            _Kind("suggestions", s.text_days, self._purge_suggestions),
        ]

    async def run(self) -> RetentionReport:
        """One run: every kind with a setting, batch after batch, within the budget."""
        report = RetentionReport()
        deadline = time.monotonic() + self._settings.run_budget_seconds
        for kind in self._kinds():
            if kind.days is None:
                continue
            report.purged.setdefault(kind.what, 0)
            while True:
                purged, failed, full = await self._batch(kind)
                report.purged[kind.what] += purged
                if failed:
                    report.failed[kind.what] = report.failed.get(kind.what, 0) + failed
                if not full:
                    break
                if time.monotonic() >= deadline:
                    report.more = True
                    break
                await asyncio.sleep(self._settings.batch_pause_seconds)
            if report.more:
                break
        self._metrics.last_run.set(time.time())
        if any(report.purged.values()) or report.failed:
            log.info("privacy.retention", **{f"purged_{k}": v for k, v in report.purged.items()},
                     failed=sum(report.failed.values()), more=report.more)
        return report

    async def _batch(self, kind: _Kind) -> tuple[int, int, bool]:
        """One transaction: purge up to a batch; (purged, failed, batch was full)."""
        assert kind.days is not None
        async with self._sessions() as session, session.begin():
            now = (await session.execute(text("SELECT now()"))).scalar_one()
            cutoff = now - timedelta(days=kind.days)
            since = (await session.execute(text(
                "SELECT watermark FROM privacy_retention WHERE what = :w FOR UPDATE"),
                {"w": kind.what})).scalar_one_or_none() or datetime.min.replace(tzinfo=now.tzinfo)
            purged, failed, reached = await kind.purge(session, since, cutoff)
            full = purged + failed >= self._settings.batch_size
            await session.execute(text(
                "INSERT INTO privacy_retention (what, watermark, purged, last_run_at) "
                "VALUES (:w, :mark, :n, now()) ON CONFLICT (what) DO UPDATE SET "
                "watermark = EXCLUDED.watermark, last_run_at = now(), "
                "purged = privacy_retention.purged + EXCLUDED.purged"),
                {"w": kind.what, "n": purged,
                 # a full batch continues where it stopped; otherwise all is done up to
                 # the cutoff (a failed item holds the watermark back for the next run)
                 "mark": reached if (full or failed) and reached is not None else cutoff})
        self._metrics.purged.labels(kind.what).inc(purged)
        if failed:
            self._metrics.purge_failures.labels(kind.what).inc(failed)
        return purged, failed, full and purged > 0

    def _params(self, since: datetime, cutoff: datetime) -> dict[str, Any]:
        return {"since": since, "cutoff": cutoff, "n": self._settings.batch_size}

    async def _purge_media(
        self, session: AsyncSession, since: datetime, cutoff: datetime
    ) -> tuple[int, int, Any]:
        rows = (await session.execute(text(
            "SELECT id, created_at, media->>'key' AS key FROM messages "
            "WHERE created_at >= :since AND created_at < :cutoff "
            "AND media->>'key' IS NOT NULL "
            "ORDER BY created_at LIMIT :n FOR UPDATE SKIP LOCKED"),
            self._params(since, cutoff))).all()
        done, failed = [], []
        for row in rows:
            try:
                await self._media.delete(str(row.key))
                done.append(row.id)
            except AtiendeError as exc:
                failed.append(row)
                log.warning("privacy.retention_media_failed", message_id=str(row.id),
                            error=str(exc)[:200])
        if done:
            await session.execute(text(
                "UPDATE messages SET media = (media - 'key' - 'filename') || "
                "jsonb_build_object('purged_at', now()) WHERE id = ANY(:ids)"), {"ids": done})
        reached = (min(r.created_at for r in failed) if failed
                   else (rows[-1].created_at if rows else None))
        return len(done), len(failed), reached

    async def _purge_messages(
        self, session: AsyncSession, since: datetime, cutoff: datetime, pending: str, sets: str
    ) -> tuple[int, int, Any]:
        rows = (await session.execute(text(
            f"UPDATE messages SET {sets} WHERE id IN ({_CANDIDATES.format(pending=pending)}) "
            "RETURNING created_at"), self._params(since, cutoff))).scalars().all()
        return len(rows), 0, max(rows) if rows else None

    async def _purge_transcripts(
        self, session: AsyncSession, since: datetime, cutoff: datetime
    ) -> tuple[int, int, Any]:
        return await self._purge_messages(session, since, cutoff, "transcript IS NOT NULL",
                                          "transcript = NULL")

    async def _purge_texts(
        self, session: AsyncSession, since: datetime, cutoff: datetime
    ) -> tuple[int, int, Any]:
        return await self._purge_messages(
            session, since, cutoff, "text IS NOT NULL OR raw IS NOT NULL OR error IS NOT NULL",
            "text = NULL, raw = NULL, error = NULL")

    async def _purge_notes(
        self, session: AsyncSession, since: datetime, cutoff: datetime
    ) -> tuple[int, int, Any]:
        rows = (await session.execute(text(
            "DELETE FROM conversation_notes WHERE id IN (SELECT id FROM conversation_notes "
            "WHERE created_at >= :since AND created_at < :cutoff ORDER BY created_at "
            "LIMIT :n FOR UPDATE SKIP LOCKED) RETURNING created_at"),
            self._params(since, cutoff))).scalars().all()
        return len(rows), 0, max(rows) if rows else None

    async def _purge_deliveries(
        self, session: AsyncSession, since: datetime, cutoff: datetime
    ) -> tuple[int, int, Any]:
        # the delivery log grows in id order: the oldest rows are always the first ids,
        # so only the first batch of ids is ever read
        rows = (await session.execute(text(
            "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM (SELECT id, "
            "created_at FROM webhook_deliveries ORDER BY id LIMIT :n) oldest "
            "WHERE created_at < :cutoff) RETURNING created_at"),
            self._params(since, cutoff))).scalars().all()
        return len(rows), 0, max(rows) if rows else None

    async def _purge_tasks(
        self, session: AsyncSession, since: datetime, cutoff: datetime
    ) -> tuple[int, int, Any]:
        # a step left to do by hand is the message written for the customer (their name,
        # list fields); the row stays for the sequence's per-step figures
        rows = (await session.execute(text(
            "UPDATE sequence_sends SET text = NULL WHERE id IN (SELECT id FROM sequence_sends "
            "WHERE text IS NOT NULL AND created_at >= :since AND created_at < :cutoff "
            "ORDER BY created_at LIMIT :n FOR UPDATE SKIP LOCKED) RETURNING created_at"),
            self._params(since, cutoff))).scalars().all()
        return len(rows), 0, max(rows) if rows else None

    async def _purge_suggestions(
        self, session: AsyncSession, since: datetime, cutoff: datetime
    ) -> tuple[int, int, Any]:
        # the grouping's lock: an item being filed or merged waits for this batch
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('kb_suggestions'))"))
        # by when it was asked, not the watermark: an item may be filed long after that
        rows = (await session.execute(_OLD_ITEMS, self._params(since, cutoff))).all()
        if rows:
            ids = sorted({r.suggestion_id for r in rows})
            await session.execute(_EMPTIED, {"ids": ids})
            await session.execute(_AFTER_PURGE, {"ids": ids})
        return len(rows), 0, max(r.asked_at for r in rows) if rows else None
