"""Durable jobs on PostgreSQL (procrastinate): the only module that imports procrastinate.

A job is deferred in the same transaction that stores the message that causes it,
so a stored message always has its job and a rolled-back one never does. Jobs of
one conversation share a lock and run strictly one after another, in order;
different conversations run in parallel. Failed jobs are retried with
exponential backoff; stalled jobs (their worker died) are retried by the
reconciler.

Send jobs can be targeted: with a send router (``route_sends``), a number's send job
goes to the queue of the node that holds the number (``outbound.node.<node>``), which
only that node's worker listens to; with no holder it is parked (``outbound.parked``,
nobody listens) until a node takes the number and adopts it (``adopt_sends``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import procrastinate
import psycopg
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException
from procrastinate.jobs import Job, Status

from bot.db import libpq_url
from bot.errors import QueueUnavailable
from bot.logs import get_logger

log = get_logger("atiende.jobs")

PROCESS_TASK = "atiende.process_conversation"
QUEUE = "inbound"
SEND_TASK = "atiende.send_number"
SEND_QUEUE = "outbound"
PARKED_SEND_QUEUE = "outbound.parked"
CAMPAIGN_TASK = "atiende.campaign_tick"
CAMPAIGN_QUEUE = "campaigns"
PERIODIC_QUEUE = "periodic"


SendRouter = Callable[[str, str], Awaitable[str]]
# Drains several conversations; returns (messages processed, failure per conversation).
BatchHandler = Callable[
    [list[uuid.UUID]], Awaitable[tuple[int, dict[uuid.UUID, Exception]]]
]

# Procrastinate's fetch (procrastinate_fetch_job_v2) for up to ``limit`` jobs in one
# statement, with the same rules: waiting and due, never a job whose lock (its
# conversation) has a job running or an earlier one waiting; rows another fetch holds are
# skipped. Its status trigger records the "started" event as for any fetched job.
_TAKE_WAITING_SQL = """
WITH picked AS (
    SELECT jobs.id FROM procrastinate_jobs AS jobs
    WHERE jobs.status = 'todo' AND jobs.queue_name = ANY(%(queues)s::varchar[])
      AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
      AND NOT EXISTS (
          SELECT 1 FROM procrastinate_jobs AS other
          WHERE jobs.lock IS NOT NULL AND other.lock = jobs.lock
            AND (other.status = 'doing'
                 OR (other.status = 'todo'
                     AND (other.priority > jobs.priority
                          OR (other.priority = jobs.priority AND other.id < jobs.id))))
      )
    ORDER BY jobs.priority DESC, jobs.id ASC
    LIMIT %(limit)s
    FOR UPDATE OF jobs SKIP LOCKED
)
UPDATE procrastinate_jobs AS j SET status = 'doing', worker_id = %(worker_id)s
FROM picked WHERE j.id = picked.id
RETURNING j.id, j.queue_name, j.task_name, j.priority, j.lock, j.queueing_lock, j.args,
          j.scheduled_at, j.attempts, j.worker_id
"""

_FINISH_SQL = (
    "SELECT procrastinate_finish_job_v1(id, 'succeeded', true) "
    "FROM unnest(%(ids)s::bigint[]) AS id"
)


def _conversation(job: Job) -> uuid.UUID:
    return uuid.UUID(str(job.task_kwargs["conversation_id"]))


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

    def register(self, process_conversations: BatchHandler, *, batch: int = 32) -> None:
        """Bind the handler that drains conversations' inbound messages.

        A job also takes the jobs of other conversations waiting at that moment (up to
        ``batch`` conversations in all, claimed with procrastinate's fetch rules, under this
        job's worker so a dead worker's jobs are retried as usual) and drains them
        together: at rest a job is one conversation; under load the cost per message
        falls as the backlog grows. Each taken job ends on its own conversation's
        outcome: finished, or retried with the same backoff as any job."""

        async def process(context: procrastinate.JobContext, conversation_id: str) -> None:
            own = uuid.UUID(conversation_id)
            worker_id = context.job.worker_id
            taken = await self._take_waiting(worker_id, batch - 1) if worker_id else []
            conversations = [own, *(_conversation(job) for job in taken)]
            try:
                _, failures = await process_conversations(conversations)
            except BaseException as exc:
                await asyncio.shield(self._end_taken(taken, {}, everything=exc))
                raise
            await self._end_taken(taken, failures)
            if own in failures:
                raise failures[own]

        self._app.task(name=PROCESS_TASK, queue=QUEUE, retry=self._retry, pass_context=True)(
            process
        )
        self._registered = True

    async def _take_waiting(self, worker_id: int, limit: int) -> list[Job]:
        """Up to ``limit`` more waiting inbound jobs, started under ``worker_id``."""
        if limit < 1:
            return []
        try:
            rows = await self._app.connector.execute_query_all_async(
                _TAKE_WAITING_SQL, queues=[QUEUE], worker_id=worker_id, limit=limit
            )
        except ConnectorException as exc:  # the batch goes on with its own conversation
            log.warning("jobs.take_failed", worker_id=worker_id, error=str(exc))
            return []
        return [Job.from_row({**row, "status": "doing"}) for row in rows]

    async def _end_taken(
        self,
        taken: list[Job],
        failures: dict[uuid.UUID, Exception],
        *,
        everything: BaseException | None = None,
    ) -> None:
        """Finish the taken jobs whose conversation succeeded (one statement); retry the
        others with the task's backoff, or mark them failed after the last attempt."""
        succeeded = [
            job.id for job in taken
            if everything is None and _conversation(job) not in failures and job.id is not None
        ]
        if succeeded:
            await self._app.connector.execute_query_async(_FINISH_SQL, ids=succeeded)
        manager = self._app.job_manager
        for job in taken:
            exc = everything or failures.get(_conversation(job))
            if exc is None:
                continue
            decision = self._retry.get_retry_decision(exception=exc, job=job)
            log.warning(
                "jobs.taken_failed", job_id=job.id, conversation_id=str(_conversation(job)),
                error=f"{type(exc).__name__}: {exc}", retry=decision is not None,
            )
            with contextlib.suppress(ConnectorException):
                if decision is None:
                    await manager.finish_job(job, Status.FAILED, delete_job=False)
                else:
                    await manager.retry_job(job, retry_at=decision.retry_at)

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

    @staticmethod
    def coalesced_process_sql(conversation_id_sql: str) -> tuple[str, str]:
        """SQL for a statement that stores an inbound message and queues its processing
        in the same atomic statement, adding a job only when none of the conversation's
        jobs is waiting to start.

        Returns two CTE bodies: ``waiting`` (a not-yet-started job of the conversation,
        locked FOR SHARE so that no worker starts it before this statement commits: when
        it runs it sees the new message) and ``deferred`` (a new job; it runs after any
        running job of the conversation, which holds the same lock). Two deliveries racing
        may both add a job: the second then finds nothing left to do.
        ``conversation_id_sql`` is an SQL expression for the conversation id.
        """
        key = f"'conv:' || ({conversation_id_sql})::text"
        waiting = (
            "SELECT j.id FROM procrastinate_jobs j "
            f"WHERE j.lock = {key} AND j.status = 'todo' FOR SHARE OF j"
        )
        deferred = (
            "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW("
            f"'{QUEUE}', '{PROCESS_TASK}', 0, {key}, NULL, "
            f"jsonb_build_object('conversation_id', ({conversation_id_sql})::text), "
            "NULL::timestamptz)]::procrastinate_job_to_defer_v1[])"
        )
        return waiting, deferred

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
        queues = [QUEUE, SEND_QUEUE, PERIODIC_QUEUE, CAMPAIGN_QUEUE]
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
