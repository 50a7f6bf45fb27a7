"""Durable background jobs on PostgreSQL (procrastinate): the only module that imports
procrastinate. Paced sends, campaign ticks and periodic tasks run here; inbound messages
have their own, lighter work list (bot/inbound_queue.py).

Jobs sharing a lock run strictly one after another. Failed jobs are retried with
exponential backoff; stalled jobs (their worker died) are retried by the reconciler.

Send jobs can be targeted: with a send router (``route_sends``), a number's send job
goes to the queue of the node that holds the number (``outbound.node.<node>``), which
only that node's worker listens to; with no holder it is parked (``outbound.parked``,
nobody listens) until a node takes the number and adopts it (``adopt_sends``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException
from procrastinate.jobs import Status

from bot.db import libpq_url
from bot.errors import QueueUnavailable
from bot.logs import get_logger

log = get_logger("atiende.jobs")

SEND_TASK = "atiende.send_number"
SEND_QUEUE = "outbound"
PARKED_SEND_QUEUE = "outbound.parked"
CAMPAIGN_TASK = "atiende.campaign_tick"
CAMPAIGN_QUEUE = "campaigns"
PERIODIC_QUEUE = "periodic"
# the name and queue the webhook triggers (migration prod_0001) put their jobs under
WEBHOOK_TASK = "atiende.webhook_deliver"
WEBHOOK_QUEUE = "webhooks"


SendRouter = Callable[[str, str], Awaitable[str]]
def node_send_queue(node: str) -> str:
    """The send queue only ``node``'s worker listens to."""
    return f"outbound.node.{node}"


def _send_key(channel: str, account: str) -> str:
    return f"send:{channel}:{account}"


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
        self._route: SendRouter | None = None
        self._own_send_queue: str | None = None

    def route_sends(self, router: SendRouter, *, own_queue: str) -> None:
        """Send jobs go to the queue ``router(channel, account)`` names; this process's
        worker also listens to ``own_queue``."""
        self._route = router
        self._own_send_queue = own_queue

    async def _send_queue(self, channel: str, account: str) -> str:
        return SEND_QUEUE if self._route is None else await self._route(channel, account)

    async def adopt_sends(self, channel: str, account: str, *, drain: bool) -> int:
        """Move the number's waiting send job to this node's queue (this node now holds
        the number); with ``drain``, also queue a send job here. Returns jobs moved."""
        assert self._own_send_queue is not None, "route_sends() first"
        try:
            # With ``drain`` a job scheduled for later (e.g. "not connected, try in 15 s")
            # runs now: the pacer still decides when each message may leave.
            rows = await self._app.connector.execute_query_all_async(
                "UPDATE procrastinate_jobs SET queue_name = %(queue)s, scheduled_at = "
                "CASE WHEN %(drain)s THEN NULL ELSE scheduled_at END "
                "WHERE task_name = %(task)s AND status = 'todo' AND queueing_lock = %(key)s "
                "AND (%(drain)s OR queue_name <> %(queue)s) RETURNING id",
                queue=self._own_send_queue, task=SEND_TASK, key=_send_key(channel, account),
                drain=drain,
            )
            if drain:
                await self.defer_send(channel, account)
        except ConnectorException as exc:
            raise QueueUnavailable(f"cannot adopt the send job of {account}: {exc}") from exc
        return len(rows)

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
        key = _send_key(channel, account)
        queue = await self._send_queue(channel, account)
        options: dict[str, Any] = {"lock": key, "queueing_lock": key, "queue": queue}
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
    def register_webhooks(
        self, deliver: Callable[[int, bool], Awaitable[None]], *, max_attempts: int,
        retry_base_seconds: int,
    ) -> None:
        """Bind the webhook delivery handler: ``deliver(delivery_id, last_try)`` raises to
        be retried (exponential backoff: base, base², base³… seconds)."""
        retry = procrastinate.RetryStrategy(
            max_attempts=max_attempts, exponential_wait=max(retry_base_seconds, 1)
        )

        async def webhook_deliver(context: procrastinate.JobContext, delivery_id: int) -> None:
            attempts = context.job.attempts if context.job is not None else 0
            await deliver(int(delivery_id), attempts + 1 >= max_attempts)

        self._app.task(name=WEBHOOK_TASK, queue=WEBHOOK_QUEUE, retry=retry, pass_context=True)(
            webhook_deliver
        )

    async def defer_webhook(self, delivery_id: int) -> None:
        """Queue one delivery attempt series (a replay; the triggers queue the first)."""
        try:
            await self._app.configure_task(WEBHOOK_TASK, queue=WEBHOOK_QUEUE).defer_async(
                delivery_id=delivery_id
            )
        except ConnectorException as exc:
            raise QueueUnavailable(f"cannot queue webhook delivery {delivery_id}: {exc}") from exc

    def register_periodic(
        self, name: str, handler: Callable[[], Awaitable[object]], *, every_seconds: int
    ) -> None:
        """Run ``handler`` every ``every_seconds`` (1-59) on one worker of the cluster."""
        if not 1 <= every_seconds <= 59:
            raise ValueError("every_seconds must be between 1 and 59")

        self._periodic(name, handler, cron=f"* * * * * */{every_seconds}")

    def register_periodic_minutes(
        self, name: str, handler: Callable[[], Awaitable[object]], *, every_minutes: int
    ) -> None:
        """Run ``handler`` every ``every_minutes`` (1-59) on one worker of the cluster."""
        if not 1 <= every_minutes <= 59:
            raise ValueError("every_minutes must be between 1 and 59")
        self._periodic(name, handler, cron=f"*/{every_minutes} * * * *")

    def _periodic(self, name: str, handler: Callable[[], Awaitable[object]], *, cron: str) -> None:
        async def tick(timestamp: int) -> None:
            await handler()

        task = self._app.task(name=name, queue=PERIODIC_QUEUE, pass_context=False)(tick)
        self._app.periodic(cron=cron, periodic_id=name)(task)

    async def open(self) -> None:
        await self._app.open_async()

    async def close(self) -> None:
        await self._app.close_async()

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
        queues = [SEND_QUEUE, PERIODIC_QUEUE, CAMPAIGN_QUEUE, WEBHOOK_QUEUE]
        if self._own_send_queue is not None:
            queues.append(self._own_send_queue)
        await self._app.run_worker_async(
            queues=queues,
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
            queue = None
            if job.task_name == SEND_TASK and self._route is not None:
                # the dead node's queue has no listener: back to the number's holder
                queue = await self._send_queue(str(job.task_kwargs["channel"]),
                                               str(job.task_kwargs["account"]))
            try:
                await manager.retry_job(job, queue=queue)
            except ConnectorException:
                # The job finished (or was retried by another node) between the two
                # queries: procrastinate refuses the retry, which is what we want. A send
                # job is also refused when its number already has a waiting job (that one
                # drains everything): end the stalled one, or its lock would block it.
                if job.task_name == SEND_TASK:
                    with contextlib.suppress(ConnectorException):
                        await manager.finish_job(job, Status.FAILED, delete_job=True)
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
