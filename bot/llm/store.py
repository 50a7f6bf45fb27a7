"""PostgreSQL side of the chain: the call log (written in the background) and saved configs."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.llm.records import LLMCall, LLMChainConfig
from bot.logs import get_logger

log = get_logger("atiende.llm")


@dataclass(slots=True)
class CallRecord:
    """What we keep of one chain call (``attempts`` may still grow for a moment)."""

    purpose: str
    model_group: str
    outcome: str
    latency_ms: float
    answered_by: str | None = None
    provider: str | None = None
    model: str | None = None
    rejected: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    error: str | None = None
    attempts: list[Any] = field(default_factory=list)
    conversation_id: str | None = None  # the conversation being answered, when there is one

    def row(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "attempts"}
        data["attempts"] = [asdict(a) if hasattr(a, "__dataclass_fields__") else a
                            for a in list(self.attempts)] or None
        data["conversation_id"] = uuid.UUID(self.conversation_id) if self.conversation_id else None
        return data


class CallLog:
    """Writes call records in batches off the customer's path; never blocks a reply."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, flush_seconds: float = 0.5,
        max_queue: int = 10_000,
    ) -> None:
        self._sessions = sessions
        self._flush_seconds = flush_seconds
        self._queue: asyncio.Queue[CallRecord] = asyncio.Queue(maxsize=max_queue)
        self._task: asyncio.Task[None] | None = None

    def add(self, record: CallRecord) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="llm-call-log")
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            log.warning("llm.call_log_full", purpose=record.purpose)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()

    async def flush(self) -> None:
        batch: list[CallRecord] = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if not batch:
            return
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(insert(LLMCall), [r.row() for r in batch])
        except (SQLAlchemyError, OSError) as exc:
            log.warning("llm.call_log_failed", records=len(batch), error=str(exc)[:200])

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def recent(self, limit: int = 50) -> list[LLMCall]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(LLMCall).order_by(LLMCall.id.desc()).limit(limit)
            )
            return list(rows.scalars())

    async def summary(self, since: datetime) -> list[dict[str, Any]]:
        """Per model and outcome since ``since``: calls, p50 latency, tokens, cost."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(
                    LLMCall.answered_by, LLMCall.outcome, func.count(),
                    func.percentile_cont(0.5).within_group(LLMCall.latency_ms),
                    func.sum(LLMCall.prompt_tokens + LLMCall.completion_tokens),
                    func.sum(LLMCall.cost_usd),
                )
                .where(LLMCall.created_at >= since)
                .group_by(LLMCall.answered_by, LLMCall.outcome)
                .order_by(func.count().desc())
            )
            return [
                {"model": r[0], "outcome": r[1], "calls": int(r[2]),
                 "p50_ms": round(float(r[3] or 0), 1), "tokens": int(r[4] or 0),
                 "cost_usd": float(r[5]) if r[5] is not None else None}
                for r in rows
            ]


class ConfigStore:
    """Saved chain configurations (sealed documents); the newest one is in use."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def latest(self) -> tuple[int, dict[str, Any]] | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(LLMChainConfig.id, LLMChainConfig.document)
                    .order_by(LLMChainConfig.id.desc()).limit(1)
                )
            ).first()
        return (int(row[0]), dict(row[1])) if row else None

    async def latest_id(self) -> int | None:
        async with self._sessions() as session:
            value = (await session.execute(select(func.max(LLMChainConfig.id)))).scalar()
        return int(value) if value is not None else None

    async def save(self, document: dict[str, Any], *, by: str | None) -> int:
        async with self._sessions() as session, session.begin():
            row = LLMChainConfig(document=document, created_by=by)
            session.add(row)
            await session.flush()
            return int(row.id)
