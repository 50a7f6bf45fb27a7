"""What every process of Atiende holds: settings, database pools, Redis, metrics, clock.

A CLI command that runs one statement builds this and nothing else; the full
runtime (``bot.wiring.runtime``) builds the other areas on top of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock, system_clock
from bot.db import AutocommitPool, create_engine, session_factory
from bot.infra import redis_adapter
from bot.infra.backing import Backing
from bot.infra.jobs import JobQueue
from bot.infra.redis_adapter import EventBus, RedisClient
from bot.metrics import Metrics
from bot.settings import Settings


@dataclass
class Core:
    """Connections and process-wide values, built from Settings once per process."""

    settings: Settings
    database_url: str
    redis_url: str
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    autocommit: AutocommitPool
    redis: RedisClient
    metrics: Metrics
    events: EventBus
    http: httpx.AsyncClient

    @classmethod
    async def open(
        cls, settings: Settings, *, database_url: str, redis_url: str,
        clock: Clock = system_clock,
    ) -> Core:
        engine = create_engine(database_url, pool_size=max(5, settings.worker_concurrency + 2))
        autocommit = AutocommitPool(database_url, max_size=settings.worker_concurrency + 2)
        await autocommit.open()
        redis = redis_adapter.connect(redis_url)
        return cls(
            settings=settings, database_url=database_url, redis_url=redis_url, clock=clock,
            engine=engine, sessions=session_factory(engine), autocommit=autocommit,
            redis=redis, metrics=Metrics(), events=EventBus(redis),
            http=httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0)),
        )

    def job_queue(self) -> JobQueue:
        """The durable job queue (procrastinate); opened by whoever uses it."""
        return JobQueue(
            self.database_url,
            max_attempts=self.settings.job_max_attempts,
            retry_base_seconds=self.settings.job_retry_base_seconds,
        )

    async def close(self) -> None:
        await self.http.aclose()
        await self.redis.aclose()
        await self.autocommit.close()
        await self.engine.dispose()


@asynccontextmanager
async def core_for(settings: Settings, backing: Backing | None = None) -> AsyncIterator[Core]:
    """The core of a short-lived command: the configured (or embedded) database and Redis
    (``backing``, when the command already found them)."""
    from bot.infra.backing import backing_services

    backing = backing or backing_services(settings)
    core = await Core.open(
        settings, database_url=backing.database_url, redis_url=backing.redis_url
    )
    try:
        yield core
    finally:
        await core.close()
