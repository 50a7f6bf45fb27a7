"""Durable jobs on PostgreSQL (procrastinate): the only module that imports procrastinate.

A job is deferred in the same transaction that stores the message that causes it,
so a stored message always has its job and a rolled-back one never does. Jobs of
one conversation share a lock and run strictly one after another, in order;
different conversations run in parallel. Failed jobs are retried with
exponential backoff; stalled jobs (their worker died) are retried by the
reconciler.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import procrastinate
import psycopg
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException

from bot.db import libpq_url

PROCESS_TASK = "atiende.process_conversation"
QUEUE = "inbound"
SEND_TASK = "atiende.send_number"
SEND_QUEUE = "outbound"
CAMPAIGN_TASK = "atiende.campaign_tick"
CAMPAIGN_QUEUE = "campaigns"
PERIODIC_QUEUE = "periodic"


@dataclass(frozen=True, slots=True)
class JobInfo:
    id: int
    task: str
    status: str
    attempts: int
    args: dict[str, Any]


class JobQueue:
    """Defer and run Atiende's background jobs."""

    def __init__(
        self,
        database_url: str,
        *,
        max_attempts: int = 5,
        retry_base_seconds: float = 2.0,
    ) -> None:
        self._app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=libpq_url(database_url), min_size=1, max_size=4
            )
        )
        self._retry = procrastinate.RetryStrategy(
            max_attempts=max_attempts, exponential_wait=int(max(retry_base_seconds, 1))
        )
        self._registered = False

    def register(self, process_conversation: Callable[[uuid.UUID], Awaitable[object]]) -> None:
        """Bind the handler that drains one conversation's inbound messages."""

        async def process(conversation_id: str) -> None:
            await process_conversation(uuid.UUID(conversation_id))

        self._app.task(name=PROCESS_TASK, queue=QUEUE, retry=self._retry)(process)
        self._registered = True

    def register_send(self, drain_number: Callable[[str, str], Awaitable[object]]) -> None:
        """Bind the handler that sends one number's pending messages, paced."""

        async def send(channel: str, account: str) -> None:
            await drain_number(channel, account)

        self._app.task(name=SEND_TASK, queue=SEND_QUEUE, retry=self._retry)(send)

    async def defer_send(self, channel: str, account: str, *, delay_seconds: float = 0) -> bool:
        """Queue (or schedule) the send job of one number; False if one is already waiting.

        One lock per number keeps its sends strictly one after another on any node; the
        queueing lock keeps at most one waiting job per number (it drains everything).
        """
        key = f"send:{channel}:{account}"
        options: dict[str, Any] = {"lock": key, "queueing_lock": key, "queue": SEND_QUEUE}
        if delay_seconds > 0:
            options["schedule_in"] = {"seconds": delay_seconds}
        try:
            await self._app.configure_task(SEND_TASK, **options).defer_async(
                channel=channel, account=account
            )
        except AlreadyEnqueued:
            return False
        return True

    async def scheduled_sends(self) -> list[dict[str, Any]]:
        """Waiting send jobs (number, when) — for the admin page and tests."""
        rows = await self._app.connector.execute_query_all_async(
            "SELECT args, scheduled_at, status::text AS status FROM procrastinate_jobs "
            "WHERE task_name = %(task)s AND status IN ('todo', 'doing') ORDER BY id",
            task=SEND_TASK,
        )
        return [dict(r) for r in rows]

    def register_campaigns(
        self, tick: Callable[[uuid.UUID], Awaitable[float | None]]
    ) -> None:
        """Bind the campaign tick: it releases what is due and says when to come back."""

        async def campaign_tick(campaign_id: str) -> None:
            delay = await tick(uuid.UUID(campaign_id))
            if delay is not None:
                await self.defer_campaign(uuid.UUID(campaign_id), delay_seconds=delay)

        self._app.task(name=CAMPAIGN_TASK, queue=CAMPAIGN_QUEUE, retry=self._retry)(
            campaign_tick
        )

    async def defer_campaign(self, campaign_id: uuid.UUID, *, delay_seconds: float = 0) -> bool:
        """Queue a campaign tick (at most one waiting per campaign); False if one waits."""
        options: dict[str, Any] = {
            "lock": f"campaign:{campaign_id}",
            "queueing_lock": f"campaign:{campaign_id}",
            "queue": CAMPAIGN_QUEUE,
        }
        if delay_seconds > 0:
            options["schedule_in"] = {"seconds": int(delay_seconds) + 1}
        try:
            await self._app.configure_task(CAMPAIGN_TASK, **options).defer_async(
                campaign_id=str(campaign_id)
            )
        except procrastinate.exceptions.AlreadyEnqueued:
            return False
        return True
    def register_periodic(
        self, name: str, handler: Callable[[], Awaitable[object]], *, every_seconds: int
    ) -> None:
        """Run ``handler`` every ``every_seconds`` (1-59) on one worker of the cluster."""
        if not 1 <= every_seconds <= 59:
            raise ValueError("every_seconds must be between 1 and 59")

        async def tick(timestamp: int) -> None:
            await handler()

        task = self._app.task(name=name, queue=PERIODIC_QUEUE, pass_context=False)(tick)
        self._app.periodic(cron=f"* * * * * */{every_seconds}", periodic_id=name)(task)

    async def open(self) -> None:
        await self._app.open_async()

    async def close(self) -> None:
        await self._app.close_async()

    async def defer_process(
        self, conversation_id: uuid.UUID, *, connection: psycopg.AsyncConnection[Any] | None
    ) -> int:
        """Queue processing of a conversation; with ``connection``, inside its transaction."""
        options: dict[str, Any] = {"lock": f"conv:{conversation_id}", "queue": QUEUE}
        if connection is not None:
            options["connection"] = connection
        job_id: int = await self._app.configure_task(PROCESS_TASK, **options).defer_async(
            conversation_id=str(conversation_id)
        )
        return job_id

    async def run_worker(
        self,
        *,
        concurrency: int,
        heartbeat_seconds: float = 2.0,
        stalled_seconds: float = 30.0,
        shutdown_seconds: float = 10.0,
    ) -> None:
        """Run a worker until cancelled (jobs still running after ``shutdown_seconds`` are
        aborted; their messages stay stored and are processed again later)."""
        await self._app.run_worker_async(
            queues=[QUEUE, SEND_QUEUE, PERIODIC_QUEUE, CAMPAIGN_QUEUE],
            concurrency=concurrency,
            wait=True,
            install_signal_handlers=False,
            listen_notify=True,
            fetch_job_polling_interval=1.0,
            update_heartbeat_interval=heartbeat_seconds,
            stalled_worker_timeout=stalled_seconds,
            delete_jobs="successful",
            shutdown_graceful_timeout=shutdown_seconds,
        )

    async def retry_stalled(self, *, seconds_since_heartbeat: float) -> list[int]:
        """Put back jobs whose worker stopped sending heartbeats (e.g. was killed)."""
        manager = self._app.job_manager
        stalled = list(
            await manager.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat)
        )
        retried: list[int] = []
        for job in stalled:
            try:
                await manager.retry_job(job)
            except ConnectorException:
                # The job finished (or was retried by another node) between the two
                # queries: procrastinate refuses the retry, which is what we want.
                continue
            if job.id is not None:
                retried.append(job.id)
        return retried

    async def counts(self) -> dict[str, int]:
        rows = await self._app.connector.execute_query_all_async(
            "SELECT status::text AS status, count(*) AS n FROM procrastinate_jobs GROUP BY status"
        )
        return {row["status"]: int(row["n"]) for row in rows}

    async def failed(self) -> list[JobInfo]:
        rows = await self._app.connector.execute_query_all_async(
            "SELECT id, task_name, status::text AS status, attempts, args "
            "FROM procrastinate_jobs WHERE status = 'failed' ORDER BY id"
        )
        return [
            JobInfo(r["id"], r["task_name"], r["status"], r["attempts"], r["args"]) for r in rows
        ]

    async def replay(self, job_id: int) -> None:
        """Run a failed job again (an operator's decision)."""
        await self._app.connector.execute_query_async(
            "UPDATE procrastinate_jobs SET status = 'todo', attempts = 0, scheduled_at = NULL "
            "WHERE id = %(job_id)s AND status = 'failed'",
            job_id=job_id,
        )
