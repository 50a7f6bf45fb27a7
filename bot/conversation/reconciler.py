"""Puts back whatever a crash left behind: stalled jobs, messages without waiting work,
unsent replies."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.conversation.inbound_queue import InboundQueue
from bot.conversation.outbox import OutboxSender
from bot.db import driver_connection
from bot.infra.jobs import JobQueue
from bot.logs import get_logger
from bot.metrics import Metrics
from handoff.conversations import Message

log = get_logger("atiende.reconciler")


class CampaignTicks(Protocol):
    """What the reconciler needs of the campaign scheduler."""

    async def running_without_tick(self) -> Sequence[tuple[uuid.UUID, float]]:
        """Running campaigns whose tick job is gone, with the delay before their next tick."""
        ...


class Reconciler:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        jobs: JobQueue,
        inbound: InboundQueue,
        outbox: OutboxSender,
        metrics: Metrics,
        stalled_seconds: float,
        interval_seconds: float,
        campaigns: CampaignTicks | None = None,
        send_claim_seconds: float = 120.0,
    ) -> None:
        self._send_claim = timedelta(seconds=send_claim_seconds)
        self._sessions = sessions
        self._jobs = jobs
        self._inbound = inbound
        self._outbox = outbox
        self._metrics = metrics
        self._stalled = stalled_seconds
        self._interval = interval_seconds
        self._campaigns = campaigns

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except (OSError, ConnectionError, SQLAlchemyError) as exc:
                log.warning("reconciler.unavailable", error=str(exc))
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # Python 3.11's wait_for (used by drivers) can swallow a cancellation
                # that races a result: stop anyway, as asked, instead of looping forever
                raise asyncio.CancelledError
            await asyncio.sleep(self._interval)

    async def run_once(self) -> None:
        retried = await self._jobs.retry_stalled(seconds_since_heartbeat=self._stalled)
        if retried:
            log.warning("reconciler.stalled_jobs_retried", job_ids=retried)
        requeued = await self._requeue_orphans()
        recovered = await self._outbox.recover_stuck(older_than=self._send_claim)
        sent = await self._outbox.send_pending(older_than=timedelta(seconds=5))
        ticks = await self._reschedule_campaigns()
        if requeued or recovered or sent or ticks:
            log.info(
                "reconciler.recovered", requeued=requeued, outbox_reset=recovered, sent=sent,
                campaign_ticks=ticks,
            )
        await self.refresh_gauges()

    async def _reschedule_campaigns(self) -> int:
        """Running campaigns whose tick job is gone (it gave up, or was lost) get one."""
        if self._campaigns is None:
            return 0
        deferred = 0
        for campaign_id, delay in await self._campaigns.running_without_tick():
            deferred += await self._jobs.defer_campaign(campaign_id, delay_seconds=delay)
        return deferred

    async def _requeue_orphans(self) -> int:
        """Conversations with stored, unprocessed messages and no waiting work get it
        (a message stored by hand, or restored from a backup)."""
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(Message.conversation_id)
                    .where(
                        Message.direction == "in",
                        Message.status == "received",
                        Message.created_at < func.now() - timedelta(seconds=self._stalled),
                        text(
                            "NOT EXISTS (SELECT 1 FROM inbound_work w "
                            "WHERE w.conversation_id = messages.conversation_id)"
                        ),
                    )
                    .distinct()
                )
            ).scalars().all()
            if rows:
                await self._inbound.enqueue(
                    list(rows), connection=await driver_connection(session)
                )
        return len(rows)

    async def refresh_gauges(self) -> None:
        counts = await self._jobs.counts()
        inbound = await self._inbound.counts()
        counts["todo"] = counts.get("todo", 0) + inbound.waiting
        counts["doing"] = counts.get("doing", 0) + inbound.running
        counts["retrying"] = inbound.retrying
        for status in ("todo", "doing", "failed", "retrying"):
            self._metrics.queue_depth.labels(status).set(counts.get(status, 0))
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Message.direction, func.count())
                    .where(Message.status.in_(["received", "pending", "sending"]))
                    .group_by(Message.direction)
                )
            ).all()
        by_direction = {r[0]: int(r[1]) for r in rows}
        self._metrics.inbound_pending.set(by_direction.get("in", 0))
        self._metrics.outbox_pending.set(by_direction.get("out", 0))
