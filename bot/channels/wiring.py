"""Builds the neonize side (numbers, sessions, supervisors) for the composition root."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.config import NeonizeConfig
from bot.channels.numbers import NumberBook, NumberPool, NumberRecord
from bot.channels.receipts import ReceiptRecorder
from bot.channels.supervisor import (
    Backoff,
    NumberSupervisor,
    Session,
    SessionFactory,
    SupervisorPolicy,
)
from bot.channels.wa_events import ConnState
from bot.channels.whatsapp import (
    LidDirectory,
    LiveSessions,
    MediaSaver,
    WhatsAppChannel,
    WhatsAppInbound,
)
from bot.clock import Clock
from bot.ingest import Ingestor
from bot.metrics import Metrics
from bot.redis_adapter import EventBus, Lease


@dataclass
class WhatsAppNumbers:
    """Everything about neonize numbers one process holds."""

    book: NumberBook
    live: LiveSessions
    channel: WhatsAppChannel
    pool: NumberPool | None
    node_id: str


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
    redis: Redis,
    ingestor: Ingestor,
    receipts: ReceiptRecorder,
    metrics: Metrics,
    events: EventBus,
    clock: Clock,
    media: MediaSaver | None,
    factory: SessionFactory | None,
) -> WhatsAppNumbers:
    book = NumberBook(sessions)
    live = LiveSessions()
    me = node_id()
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
        lease = Lease(redis, f"whatsapp:{account}", holder=me,
                      ttl=timedelta(seconds=config.lease_seconds))
        return await NumberSupervisor(
            account, book=book, lease=lease, live=live, inbound=inbound, factory=factory,
            policy=policy, metrics=metrics, events=events, clock=clock,
        ).run()

    pool = (
        NumberPool(book, supervise, interval=config.poll_seconds,
                   threads=config.worker_threads if config.enabled else None)
        if factory is not None else None
    )
    return WhatsAppNumbers(book=book, live=live, channel=WhatsAppChannel(live, media), pool=pool,
                           node_id=me)
