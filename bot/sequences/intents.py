"""Automatic enrollment: a sequence can enroll every customer whose message the bot
classified with an intent the admin picked (optionally only when it was handed over).

The watcher reads inbound messages in ``seq`` order behind a cursor, only as far as
every earlier message has been processed (its intent is known) and committed for a few
seconds, so none is skipped. The cursor moves in the same transaction as the
enrollments it caused: a crash repeats neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.errors import NotFound, SequenceConflict, SequenceRejected
from bot.logs import get_logger
from bot.sequences.enrolling import enroll, target_by_conversation
from bot.sequences.models import IntentCursor
from bot.sequences.models import Sequence as SequenceRow

__all__ = ["IntentWatcher"]

log = get_logger("atiende.sequences")

CURSOR_ID = 1
READ_LIMIT = 5000  # messages looked at per tick

# How far the cursor may go: not past an inbound message still waiting for the pipeline
# (its intent is not known yet), nor into the last few seconds (a transaction that took
# a lower seq may not have committed yet).
_BOUND = text(
    """
    SELECT least(
      (SELECT min(seq) FROM messages WHERE status = 'received' AND direction = 'in'),
      (SELECT max(seq) + 1 FROM (
          SELECT seq FROM messages WHERE seq > :cursor ORDER BY seq LIMIT :limit) AS s),
      (SELECT min(seq) FROM messages
        WHERE seq > :cursor AND created_at > now() - interval '2 seconds')
    ) AS bound
    """
)

_MATCHES = text(
    """
    SELECT m.seq, m.conversation_id, m.intent, coalesce(m.escalated, false) AS escalated
    FROM messages m
    WHERE m.seq > :cursor AND m.seq < :bound AND m.direction = 'in'
      AND m.author = 'customer' AND m.intent = ANY(:intents)
    ORDER BY m.seq
    """
)


class IntentWatcher:
    """Enrolls customers into the sequences whose ``auto_intent`` their message matched."""

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def run(self) -> int:
        """Read new classified messages; return how many enrollments they made."""
        async with self._sessions() as session, session.begin():
            cursor = await self._cursor(session)
            if cursor is None:
                return 0
            bound = (
                await session.execute(_BOUND, {"cursor": cursor.last_seq, "limit": READ_LIMIT})
            ).scalar_one()
            if bound is None or bound <= cursor.last_seq + 1:
                return 0
            sequences = (
                await session.execute(
                    select(SequenceRow).where(SequenceRow.status == "active",
                                              SequenceRow.auto_intent.is_not(None))
                )
            ).scalars().all()
            enrolled = 0
            if sequences:
                matches = (
                    await session.execute(_MATCHES, {
                        "cursor": cursor.last_seq, "bound": bound,
                        "intents": sorted({s.auto_intent for s in sequences if s.auto_intent}),
                    })
                ).all()
                enrolled = await self._enroll(session, sequences, matches)
            cursor.last_seq = bound - 1
        return enrolled

    async def _cursor(self, session: AsyncSession) -> IntentCursor | None:
        """The cursor, locked (None when another tick holds it); created at the newest
        message, so a new deployment does not enroll from old history."""
        cursor = (
            await session.execute(
                select(IntentCursor).where(IntentCursor.id == CURSOR_ID)
                .with_for_update(skip_locked=True)
            )
        ).scalar_one_or_none()
        if cursor is not None:
            return cursor
        exists = (
            await session.execute(select(IntentCursor.id).where(IntentCursor.id == CURSOR_ID))
        ).scalar_one_or_none()
        if exists is not None:
            return None
        await session.execute(
            text("INSERT INTO sequence_intent_cursor (id, last_seq) "
                 "SELECT :id, coalesce(max(seq), 0) FROM messages ON CONFLICT DO NOTHING"),
            {"id": CURSOR_ID},
        )
        return None

    async def _enroll(
        self, session: AsyncSession, sequences: Sequence[SequenceRow], matches: Sequence[Any]
    ) -> int:
        now = self._clock()
        enrolled = 0
        for match in matches:
            for sequence in sequences:
                if sequence.auto_intent != match.intent:
                    continue
                if sequence.auto_escalated_only and not match.escalated:
                    continue
                try:
                    async with session.begin_nested():
                        target = await target_by_conversation(session, match.conversation_id)
                        enrollment = await enroll(
                            session, sequence=sequence, target=target, fields={},
                            source="intent", by=None, now=now, again=True)
                except (SequenceConflict, SequenceRejected, NotFound) as exc:
                    # already in it, opted out, blocked, no phone: nothing to do, said once
                    log.info("sequences.intent_skipped", sequence_id=str(sequence.id),
                             conversation_id=str(match.conversation_id), reason=str(exc))
                    continue
                enrolled += 1
                log.info("sequences.enrolled", enrollment_id=str(enrollment.id),
                         sequence_id=str(sequence.id), source="intent", intent=match.intent,
                         conversation_id=str(match.conversation_id))
        return enrolled
