"""Builds the neonize side (numbers, sessions, supervisors) for the composition root."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.numbers import NumberBook, NumberPool, NumberRecord
from bot.channels.receipts import ReceiptRecorder
from bot.channels.supervisor import (
    Backoff,
    NumberSupervisor,
    Session,
    SessionFactory,
    SupervisorPolicy,
)
from bot.channels.wa_events import WHATSAPP_CHANNEL, ConnState
from bot.channels.whatsapp import (
    LidDirectory,
    LiveSessions,
    MediaSaver,
    WhatsAppChannel,
    WhatsAppInbound,
)
from bot.clock import Clock
from bot.conversation.ingest import Ingestor
from bot.errors import AtiendeError
from bot.infra.jobs import PARKED_SEND_QUEUE, SEND_QUEUE, JobQueue, node_send_queue
from bot.infra.redis_adapter import CacheUnavailable, EventBus, Lease, RedisClient
from bot.logs import get_logger
from bot.metrics import Metrics
from bot.settings.channels import NeonizeConfig

log = get_logger("atiende.whatsapp")

Drain = Callable[[str, str], Awaitable[int]]


def lease_name(account: str) -> str:
    return f"whatsapp:{account}"


class SendTargeting:
    """A neonize number sends only from the node holding its lease (its session lives
    there): its send job is queued on that node's queue, parked when nobody holds it,
    adopted by the node that takes it, and a job that lands elsewhere passes itself on
    without touching a row. Other channels' send jobs stay on the shared queue."""

    def __init__(self, *, redis: RedisClient, jobs: JobQueue, node: str, lease_ttl: float) -> None:
        self._redis = redis
        self._jobs = jobs
        self._node = node
        self._ttl = timedelta(seconds=lease_ttl)
        self.queue = node_send_queue(node)

    def _lease(self, account: str) -> Lease:
        return Lease(self._redis, lease_name(account), holder=self._node, ttl=self._ttl)

    async def route(self, channel: str, account: str) -> str:
        """The queue a send job of this number belongs on."""
        if channel != WHATSAPP_CHANNEL:
            return SEND_QUEUE
        try:
            holder = await self._lease(account).current_holder()
        except CacheUnavailable:
            return PARKED_SEND_QUEUE  # the holder adopts it once Redis answers again
        return node_send_queue(holder) if holder else PARKED_SEND_QUEUE

    async def holds(self, account: str) -> bool:
        try:
            return await self._lease(account).current_holder() == self._node
        except CacheUnavailable:
            return False

    def guard(self, drain: Drain) -> Drain:
        """``drain`` runs only where the number's lease is held; elsewhere the job is
        passed on to the holder (nothing claimed, nothing sent, nothing lost)."""

        async def guarded(channel: str, account: str) -> int:
            if channel == WHATSAPP_CHANNEL and not await self.holds(account):
                await self._jobs.defer_send(channel, account)
                log.info("whatsapp.send_passed_on", account=account, node=self._node)
                return 0
            return await drain(channel, account)

        return guarded

    async def adopt(self, account: str, *, drain: bool) -> None:
        """This node holds the number: take its waiting send job (and drain, if asked)."""
        try:
            moved = await self._jobs.adopt_sends(WHATSAPP_CHANNEL, account, drain=drain)
        except AtiendeError as exc:
            log.warning("whatsapp.adopt_failed", account=account, error=str(exc))
            return
        if moved:
            log.info("whatsapp.sends_adopted", account=account, node=self._node, jobs=moved)


@dataclass
class WhatsAppNumbers:
    """Everything about neonize numbers one process holds."""

    book: NumberBook
    live: LiveSessions
    channel: WhatsAppChannel
    pool: NumberPool | None
    node_id: str
    targeting: SendTargeting | None = None


def node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def neonize_factory(config: NeonizeConfig, database_url: str, region: str) -> SessionFactory:
    """Sessions backed by neonize, whatsmeow's store in PostgreSQL (imported lazily:
    loading neonize's Go library costs ~55 MB, only paid when numbers are enabled)."""
    from bot.channels.neonize_adapter import NeonizeSession, store_url

    store = store_url(config.store_url or database_url)

    def factory(record: NumberRecord) -> Session:
        return NeonizeSession(account=record.account, store=store,
                              session_id=record.session_id, jid=record.jid,
                              default_region=region)

    return factory


def build_whatsapp(
    config: NeonizeConfig,
    *,
    sessions: async_sessionmaker[AsyncSession],
    redis: RedisClient,
    ingestor: Ingestor,
    receipts: ReceiptRecorder,
    metrics: Metrics,
    events: EventBus,
    clock: Clock,
    media: MediaSaver | None,
    factory: SessionFactory | None,
    jobs: JobQueue | None = None,
    node: str | None = None,
) -> WhatsAppNumbers:
    """With ``jobs``, numbers' send jobs are targeted at their lease holder."""
    book = NumberBook(sessions)
    live = LiveSessions()
    me = node or node_id()
    targeting = None
    if jobs is not None and factory is not None:
        targeting = SendTargeting(redis=redis, jobs=jobs, node=me,
                                  lease_ttl=config.lease_seconds)
        jobs.route_sends(targeting.route, own_queue=targeting.queue)
    inbound = WhatsAppInbound(
        ingestor=ingestor, receipts=receipts, lids=LidDirectory(sessions), media=media,
        media_max_bytes=config.media_max_bytes,
    )
    policy = SupervisorPolicy(
        backoff=Backoff(config.backoff_initial_seconds, config.backoff_max_seconds),
        restart_cap=config.restart_cap, qr_timeout=config.qr_timeout_seconds,
        lease_ttl=config.lease_seconds,
    )

    async def supervise(account: str) -> ConnState:
        assert factory is not None
        lease = Lease(redis, lease_name(account), holder=me,
                      ttl=timedelta(seconds=config.lease_seconds))
        return await NumberSupervisor(
            account, book=book, lease=lease, live=live, inbound=inbound, factory=factory,
            policy=policy, metrics=metrics, events=events, clock=clock,
            adopt=targeting.adopt if targeting is not None else None,
        ).run()

    pool = (
        NumberPool(book, supervise, interval=config.poll_seconds,
                   threads=config.worker_threads if config.enabled else None)
        if factory is not None else None
    )
    return WhatsAppNumbers(book=book, live=live, channel=WhatsAppChannel(live, media), pool=pool,
                           node_id=me, targeting=targeting)
