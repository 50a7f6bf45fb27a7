"""Per-step figures of a sequence, read from the outbox rows the steps wrote: sent,
delivered, read, replied (a customer message after the step and before the next one),
by hand, and the enrollments that stopped while waiting for each step."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.sequences.values import StepStats

__all__ = ["enrollment_counts", "step_stats"]

_STEPS = text(
    """
    SELECT s.step,
      count(*) FILTER (WHERE s.kind = 'message') AS queued,
      count(*) FILTER (WHERE m.status IN ('sent','delivered','read','played')) AS sent,
      count(*) FILTER (WHERE m.status IN ('delivered','read','played')) AS delivered,
      count(*) FILTER (WHERE m.status IN ('read','played')) AS read,
      count(*) FILTER (WHERE m.status = 'failed') AS failed,
      count(*) FILTER (WHERE m.status = 'cancelled') AS cancelled,
      count(*) FILTER (WHERE s.kind = 'manual') AS by_hand,
      count(*) FILTER (WHERE m.status IN ('sent','delivered','read','played') AND EXISTS (
          SELECT 1 FROM messages i
          WHERE i.conversation_id = m.conversation_id AND i.direction = 'in'
            AND i.author = 'customer' AND i.seq > m.seq
            AND (nm.seq IS NULL OR i.seq < nm.seq))) AS replied
    FROM sequence_sends s
    LEFT JOIN messages m ON m.id = s.message_id
    LEFT JOIN sequence_sends n ON n.enrollment_id = s.enrollment_id AND n.step = s.step + 1
    LEFT JOIN messages nm ON nm.id = n.message_id
    WHERE s.sequence_id = :sequence_id
    GROUP BY s.step
    """
)

_STOPPED = text(
    """
    SELECT next_step AS step, count(*) AS stopped FROM sequence_enrollments
    WHERE sequence_id = :sequence_id AND state = 'stopped'
    GROUP BY next_step
    """
)

_STATES = text(
    "SELECT state, count(*) AS n FROM sequence_enrollments WHERE sequence_id = :sequence_id "
    "GROUP BY state"
)


async def step_stats(
    session: AsyncSession, sequence_id: uuid.UUID, steps: int
) -> list[StepStats]:
    """One line per step (1-based ``step``), zeros for steps nothing reached yet."""
    params = {"sequence_id": sequence_id}
    rows = {r.step: r for r in (await session.execute(_STEPS, params)).all()}
    stopped = {r.step: int(r.stopped) for r in (await session.execute(_STOPPED, params)).all()}
    stats = []
    for index in range(steps):
        row = rows.get(index)
        counts = {k: int(v or 0) for k, v in row._mapping.items() if k != "step"} if row else {}
        stats.append(StepStats(step=index + 1, stopped=stopped.get(index, 0), **counts))
    return stats


async def enrollment_counts(session: AsyncSession, sequence_id: uuid.UUID) -> dict[str, int]:
    counts = {"active": 0, "stopped": 0, "completed": 0}
    for row in (await session.execute(_STATES, {"sequence_id": sequence_id})).all():
        counts[row.state] = int(row.n)
    return counts
