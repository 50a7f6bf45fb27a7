"""Builds the neonize side (numbers, sessions, supervisors) for the composition root."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.numbers import NumberBook, NumberPool, NumberRecord, Prepare
from bot.channels.receipts import ReceiptRecorder
from bot.channels.session_process import ProcessSession
from bot.channels.session_wire import HostConfig
from bot.channels.supervisor import (
    Backoff,
    NumberSupervisor,
    Session,
    SessionFactory,
    SupervisorPolicy,
)
from bot.channels.wa_events import WHATSAPP_CHANNEL, ConnState
from bot.channels.wa_store import (
    APP_NAME_PREFIX,
    StoreProvisioner,
    application_name,
    default_role,
    derived_password,
    derived_store_url,
    number_store_url,
    store_url,
)
from bot.channels.whatsapp import (
    LidDirectory,
    LiveSessions,
    MediaSaver,
    WhatsAppChannel,
    WhatsAppInbound,
)
from bot.clock import Clock
from bot.conversation.ingest import Ingestor
from bot.db import libpq_url
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


@dataclass(frozen=True)
class NeonizeStore:
    """Where whatsmeow keeps the numbers' sessions."""

    url: str  # lib/pq URL (with the role's password: never logged as is)
    provisioner: StoreProvisioner | None  # None: STORE_URL given, the operator manages it


def neonize_store(config: NeonizeConfig, database_url: str, secret_key: str) -> NeonizeStore:
    """``STORE_URL`` as given, else the app database in its own schema and role."""
    if config.store_url:
        return NeonizeStore(store_url(config.store_url), None)
    role = config.store_role or default_role(database_url)
    password = derived_password(secret_key, role)
    provisioner = StoreProvisioner(
        libpq_url(database_url), schema=config.store_schema, role=role, password=password,
        per_number=config.store_connections_per_number)
    url = derived_store_url(database_url, role=role, password=password,
                            schema=config.store_schema)
    return NeonizeStore(url, provisioner)


def neonize_factory(
    config: NeonizeConfig, store: NeonizeStore, region: str, *, log_level: str = "WARNING",
) -> SessionFactory:
    """Each number's neonize client in its own process (``neonize_host``): a Go panic ends
    that process only, and stopping it closes its store connections."""

    def factory(record: NumberRecord) -> Session:
        host = HostConfig(account=record.account,
                          store=number_store_url(store.url, record.account),
                          session_id=record.session_id, jid=record.jid, region=region,
                          log_level=log_level)
        return ProcessSession(host, call_timeout=config.call_timeout_seconds,
                              stop_timeout=config.stop_timeout_seconds)

    return factory


def store_keeper(
    store: NeonizeStore, sessions: async_sessionmaker[AsyncSession], metrics: Metrics,
) -> Prepare:
    """At every check: the store's schema, role and connection limit fit the numbers, and
    each number's open store connections are counted (``atiende_whatsapp_store_connections``;
    a client process tags its connections with the number as ``application_name``)."""

    async def prepare(records: list[NumberRecord]) -> None:
        if store.provisioner is not None:
            await store.provisioner.ensure(sum(1 for r in records if r.enabled))
        async with sessions() as session:
            rows = (await session.execute(text(
                "SELECT application_name, count(*) FROM pg_stat_activity "
                "WHERE application_name LIKE :prefix GROUP BY 1"),
                {"prefix": f"{APP_NAME_PREFIX}%"})).all()
        counts = {str(name): int(n) for name, n in rows}
        for record in records:
            metrics.store_connections.labels(record.account).set(
                counts.get(application_name(record.account), 0))

    return prepare


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
    region: str = "MX",
    jobs: JobQueue | None = None,
    node: str | None = None,
    prepare: Prepare | None = None,
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
        lease_ttl=config.lease_seconds, connect_timeout=config.connect_timeout_seconds,
        region=region,
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
                   threads=config.worker_threads if config.enabled else None, prepare=prepare)
        if factory is not None else None
    )
    return WhatsAppNumbers(book=book, live=live, channel=WhatsAppChannel(live, media), pool=pool,
                           node_id=me, targeting=targeting)
