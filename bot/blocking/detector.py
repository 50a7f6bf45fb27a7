"""The blocked-contact detector: a periodic job that marks conversations "probably
blocked" from consecutive undelivered messages, with the evidence.

The rule (settings ``ATIENDE_BLOCKING__…``): at least ``messages`` consecutive messages
that WhatsApp accepted (``sent``) but never reported delivered, with no delivery, read or
customer message since the first of them; the contact is *suspected* when the last of
them is seen, and *marked* once they have stayed undelivered for ``hours`` of time during
which the number's receipts were demonstrably flowing.

Why an outage on our side marks nobody: receipts that never reached us look exactly
like a block. So the watch only advances up to the number's latest receipt (nothing
arrives during an outage, so nothing accrues); and a number whose receipts stopped
``outage_minutes`` ago while ``outage_conversations`` or more conversations wait for one
(a few blocks look like a few; an outage looks like everyone) is in an outage: every
message sent until its receipts come back is below its ``outage_seq`` line and never
counts (those receipts may be lost). Messages that failed to send are never evidence.
All durations are measured on the injected clock, so tests drive days with a fake one.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.logs import get_logger
from bot.metrics import Metrics
from bot.settings.sequences import BlockingConfig

__all__ = ["BlockDetector", "DetectorRun"]

log = get_logger("atiende.blocking")

EVIDENCE_MESSAGES = 10  # at most this many message ids are kept as evidence

_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('atiende.blocking.detector'))")

# Per number: how many conversations wait for a receipt for a message sent after the
# newest one known delivered (in an outage that is everyone; with a few blocks, a few).
_NUMBERS = text(
    """
    WITH tail AS (
      SELECT c.channel, c.account, count(DISTINCT m.conversation_id) AS waiting
      FROM messages m
      JOIN conversations c ON c.id = m.conversation_id
      JOIN delivery_health h ON h.channel = c.channel AND h.account = c.account
      WHERE m.direction = 'out' AND m.status = 'sent' AND m.channel = ANY(:channels)
        AND m.seq > h.last_delivered_seq
      GROUP BY c.channel, c.account
    )
    SELECT h.channel, h.account, h.last_receipt_at, h.outage_since,
           coalesce(t.waiting, 0) AS waiting
    FROM delivery_health h LEFT JOIN tail t ON t.channel = h.channel AND t.account = h.account
    """
)

# In an outage the line follows the newest message: nothing sent until the receipts come
# back counts; when they are back it is drawn once more, over what was sent meanwhile.
_LINE = text(
    """
    UPDATE delivery_health
    SET outage_seq = (SELECT coalesce(max(seq), 0) FROM messages),
        outages = outages + CASE WHEN :outage AND outage_since IS NULL THEN 1 ELSE 0 END,
        outage_since = CASE WHEN :outage THEN coalesce(outage_since, last_receipt_at) END
    WHERE channel = :channel AND account = :account
    """
)

_POSITIVE = """
    (p.direction = 'in' AND p.author = 'customer')
    OR (p.direction = 'out' AND p.status IN ('delivered', 'read', 'played'))
"""

_RESOLVED = text(
    f"""
    WITH open AS (
      SELECT b.conversation_id, b.state,
             EXISTS (SELECT 1 FROM messages p WHERE p.conversation_id = b.conversation_id
                     AND p.seq >= b.streak_from_seq AND p.direction = 'in'
                     AND p.author = 'customer') AS wrote
      FROM contact_blocks b
      WHERE b.state <> 'cleared' AND EXISTS (
        SELECT 1 FROM messages p WHERE p.conversation_id = b.conversation_id
          AND p.seq >= b.streak_from_seq AND ({_POSITIVE}))
      FOR UPDATE OF b
    )
    UPDATE contact_blocks b
    SET state = 'cleared', cleared_at = :now, cleared_by = NULL,
        cleared_reason = CASE WHEN open.wrote THEN 'inbound' ELSE 'delivered' END
    FROM open WHERE b.conversation_id = open.conversation_id
    RETURNING b.conversation_id, open.state AS was, b.cleared_reason
    """
)

# Conversations with enough accepted-but-undelivered messages above every line: the
# last reply, delivery or read; the number's outage line; an agent's clear.
_CANDIDATES = text(
    f"""
    WITH u AS MATERIALIZED (
      SELECT m.conversation_id, m.seq, m.id, m.sent_at
      FROM messages m
      WHERE m.direction = 'out' AND m.status = 'sent' AND m.channel = ANY(:channels)
    ),
    enough AS (
      SELECT conversation_id FROM u GROUP BY conversation_id HAVING count(*) >= :n
    ),
    lines AS (
      SELECT e.conversation_id, c.contact_id, c.channel, c.account,
             greatest(h.outage_seq, coalesce(b.baseline_seq, 0), coalesce(p.seq, 0)) AS above
      FROM enough e
      JOIN conversations c ON c.id = e.conversation_id
      JOIN delivery_health h ON h.channel = c.channel AND h.account = c.account
      LEFT JOIN contact_blocks b ON b.conversation_id = e.conversation_id
      LEFT JOIN LATERAL (
        SELECT max(p.seq) AS seq FROM messages p
        WHERE p.conversation_id = e.conversation_id AND ({_POSITIVE})
      ) p ON true
      WHERE c.erased_at IS NULL  -- an erased customer is watched no more
    )
    SELECT l.conversation_id, l.contact_id, l.channel, l.account, count(*) AS undelivered,
           min(u.seq) AS first_seq,
           (array_agg(u.id::text ORDER BY u.seq))[1:{EVIDENCE_MESSAGES}] AS message_ids,
           (array_agg(u.sent_at ORDER BY u.seq))[1:{EVIDENCE_MESSAGES}] AS sent_at
    FROM lines l JOIN u ON u.conversation_id = l.conversation_id AND u.seq > l.above
    GROUP BY l.conversation_id, l.contact_id, l.channel, l.account
    HAVING count(*) >= :n
    """
)

_OPEN_ROWS = text(
    """
    SELECT b.conversation_id, b.state, b.streak_from_seq, b.observed_seconds,
           b.checked_at, h.last_receipt_at
    FROM contact_blocks b
    LEFT JOIN delivery_health h ON h.channel = b.channel AND h.account = b.account
    WHERE b.state <> 'cleared' OR b.conversation_id = ANY(:ids)
    """
)

_SUSPECT = text(
    """
    INSERT INTO contact_blocks (conversation_id, contact_id, channel, account, state,
        streak_from_seq, undelivered, observed_seconds, baseline_seq, evidence,
        suspected_at, checked_at)
    VALUES (:conversation_id, :contact_id, :channel, :account, 'suspected', :first_seq,
            :undelivered, 0, 0, CAST(:evidence AS jsonb), :now, :now)
    ON CONFLICT (conversation_id) DO UPDATE SET
        state = 'suspected', streak_from_seq = EXCLUDED.streak_from_seq,
        undelivered = EXCLUDED.undelivered, observed_seconds = 0,
        evidence = EXCLUDED.evidence, suspected_at = EXCLUDED.suspected_at,
        checked_at = EXCLUDED.checked_at, blocked_at = NULL, cleared_at = NULL,
        cleared_reason = NULL, cleared_by = NULL
    """
)

_WATCH = text(
    """
    UPDATE contact_blocks SET undelivered = :undelivered, observed_seconds = :observed,
        checked_at = :checked_at, evidence = CAST(:evidence AS jsonb),
        state = CASE WHEN :blocked THEN 'blocked' ELSE state END,
        blocked_at = CASE WHEN :blocked AND blocked_at IS NULL THEN :now ELSE blocked_at END
    WHERE conversation_id = :conversation_id
    """
)

_DROP = text(
    "DELETE FROM contact_blocks WHERE state = 'suspected' AND conversation_id = ANY(:ids)"
)


@dataclass(frozen=True, slots=True)
class DetectorRun:
    """What one run did (for logs, tests and the benchmark)."""

    suspected: int = 0
    blocked: list[uuid.UUID] = field(default_factory=list)
    cleared: int = 0
    outages: list[str] = field(default_factory=list)


class BlockDetector:
    """Marks conversations "probably blocked" (see the module docstring for the rule)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        config: BlockingConfig,
        clock: Clock,
        metrics: Metrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._config = config
        self._clock = clock
        self._metrics = metrics

    async def run(self) -> DetectorRun:
        """One pass over the numbers and the conversations with undelivered messages."""
        if not self._config.enabled:
            return DetectorRun()
        now = self._clock()
        async with self._sessions() as session, session.begin():
            if not (await session.execute(_LOCK)).scalar():
                return DetectorRun()  # another worker is running it right now
            outages = await self._watch_numbers(session, now)
            cleared = await self._clear_resolved(session, now)
            suspected, blocked = await self._observe(session, now)
        if blocked and self._metrics is not None:
            self._metrics.blocked_marks.inc(len(blocked))
        if blocked or cleared or outages:
            log.info("blocking.run", blocked=[str(b) for b in blocked], cleared=cleared,
                     outages=outages, suspected=suspected)
        return DetectorRun(suspected, blocked, cleared, outages)

    async def _watch_numbers(self, session: AsyncSession, now: datetime) -> list[str]:
        """Find numbers whose receipts stopped (an outage) and move their evidence line."""
        config = self._config
        quiet_since = now - timedelta(minutes=config.outage_minutes)
        started: list[str] = []
        numbers = (
            await session.execute(_NUMBERS, {"channels": list(config.channels)})
        ).all()
        for row in numbers:
            outage = (row.waiting >= config.outage_conversations
                      and row.last_receipt_at < quiet_since)
            if not outage and row.outage_since is None:
                continue
            params = {"channel": row.channel, "account": row.account, "outage": outage}
            await session.execute(_LINE, params)
            number = f"{row.channel}:{row.account}"
            if outage and row.outage_since is None:
                started.append(number)
                log.warning("blocking.receipts_stopped", number=number, waiting=row.waiting,
                            last_receipt_at=row.last_receipt_at.isoformat())
            elif not outage:
                log.info("blocking.receipts_back", number=number,
                         since=row.outage_since.isoformat())
        return started

    async def _clear_resolved(self, session: AsyncSession, now: datetime) -> int:
        rows = (await session.execute(_RESOLVED, {"now": now})).all()
        for row in rows:
            if row.was == "blocked":
                log.info("blocking.cleared", conversation_id=str(row.conversation_id),
                         reason=row.cleared_reason)
        return sum(1 for r in rows if r.was == "blocked")

    async def _observe(
        self, session: AsyncSession, now: datetime
    ) -> tuple[int, list[uuid.UUID]]:
        config = self._config
        found = (
            await session.execute(
                _CANDIDATES, {"channels": list(config.channels), "n": config.messages}
            )
        ).all()
        by_id = {row.conversation_id: row for row in found}
        known = {
            row.conversation_id: row
            for row in (await session.execute(_OPEN_ROWS, {"ids": list(by_id)})).all()
        }
        blocked: list[uuid.UUID] = []
        for conversation_id, candidate in by_id.items():
            row = known.get(conversation_id)
            if row is None or row.state == "cleared" or row.streak_from_seq != candidate.first_seq:
                await self._suspect(session, candidate, now)
            elif await self._watch(session, candidate, row, now):
                blocked.append(conversation_id)
        # suspicions whose evidence is gone (an outage line moved over it, say)
        stale = [cid for cid, row in known.items()
                 if row.state == "suspected" and cid not in by_id]
        if stale:
            await session.execute(_DROP, {"ids": stale})
        return len(by_id), blocked

    async def _suspect(self, session: AsyncSession, candidate: Row[Any], now: datetime) -> None:
        await session.execute(_SUSPECT, {
            "conversation_id": candidate.conversation_id, "contact_id": candidate.contact_id,
            "channel": candidate.channel, "account": candidate.account,
            "first_seq": candidate.first_seq, "undelivered": candidate.undelivered,
            "evidence": _json(self._evidence(candidate, 0.0, None)), "now": now,
        })

    async def _watch(
        self, session: AsyncSession, candidate: Row[Any], row: Row[Any], now: datetime
    ) -> bool:
        """Advance the watch up to the number's latest receipt; True when newly marked."""
        observed, checked_at = float(row.observed_seconds), row.checked_at
        proof = min(now, row.last_receipt_at) if row.last_receipt_at else checked_at
        if checked_at is not None and proof > checked_at:
            observed += (proof - checked_at).total_seconds()
            checked_at = proof
        marked = row.state != "blocked" and observed >= self._config.hours * 3600
        await session.execute(_WATCH, {
            "conversation_id": candidate.conversation_id, "undelivered": candidate.undelivered,
            "observed": observed, "checked_at": checked_at, "now": now,
            "blocked": marked or row.state == "blocked",
            "evidence": _json(self._evidence(candidate, observed, row.last_receipt_at)),
        })
        if marked:
            log.warning(
                "blocking.marked", conversation_id=str(candidate.conversation_id),
                channel=candidate.channel, account=candidate.account,
                undelivered=candidate.undelivered, watched_hours=round(observed / 3600, 1),
            )
        return marked

    def _evidence(
        self, candidate: Row[Any], observed: float, last_receipt_at: datetime | None
    ) -> dict[str, Any]:
        return {
            "rule": {"messages": self._config.messages, "hours": self._config.hours},
            "undelivered": int(candidate.undelivered),
            "watched_hours": round(observed / 3600, 2),
            "number_last_receipt_at": last_receipt_at.isoformat() if last_receipt_at else None,
            "messages": [
                {"message_id": mid, "sent_at": at.isoformat() if at else None}
                for mid, at in zip(candidate.message_ids, candidate.sent_at, strict=False)
            ],
        }


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value)
