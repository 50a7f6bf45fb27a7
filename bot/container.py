"""The composition root: every long-lived object is built here, from Settings, once."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import redis_adapter
from bot.campaigns import CampaignScheduler, CampaignService
from bot.channels.base import ChannelRegistry
from bot.channels.simulator import SimulatorChannel
from bot.clock import Clock, system_clock
from bot.db import create_engine, session_factory
from bot.generation import Summarizer
from bot.handoff_adapters import SummarizerPort
from bot.history import HistoryLoader
from bot.ingest import Ingestor
from bot.jobs import JobQueue
from bot.llm import LLMMetrics, LLMService
from bot.media import MediaStore, UrlSigner, build_media_store
from bot.metrics import Metrics
from bot.outbox import OutboxSender
from bot.pipeline import Pipeline
from bot.reconciler import Reconciler
from bot.redis_adapter import ConversationMemory, EventBus, RedisRateLimiter
from bot.responder import Persona, Responder, RuleResponder
from bot.settings import Settings
from handoff.auth import AuthService
from handoff.inbox import InboxQueries
from handoff.service import HandoffService


@dataclass
class Runtime:
    """Everything a process of Atiende needs, wired together."""

    settings: Settings
    database_url: str
    redis_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    jobs: JobQueue
    metrics: Metrics
    events: EventBus
    memory: ConversationMemory
    channels: ChannelRegistry
    outbox: OutboxSender
    pipeline: Pipeline
    ingestor: Ingestor
    reconciler: Reconciler
    auth: AuthService
    handoff: HandoffService
    inbox: InboxQueries
    clock: Clock
    llm: LLMService
    media: MediaStore
    url_signer: UrlSigner
    campaigns: CampaignService
    campaign_scheduler: CampaignScheduler
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        database_url: str,
        redis_url: str,
        clock: Clock = system_clock,
        responder: Responder | None = None,
        summarizer: Summarizer | None = None,
    ) -> Runtime:
        engine = create_engine(database_url, pool_size=max(5, settings.worker_concurrency + 2))
        sessions = session_factory(engine)
        redis = redis_adapter.connect(redis_url)
        metrics = Metrics()
        events = EventBus(redis)
        memory = ConversationMemory(
            redis,
            ttl=timedelta(hours=settings.memory_ttl_hours),
            max_turns=settings.memory_max_turns,
            clock=clock,
            loader=HistoryLoader(sessions, limit=settings.memory_max_turns),
        )
        llm = LLMService(
            sessions=sessions,
            metrics=LLMMetrics(metrics.registry),
            secret_key=settings.secret_key.get_secret_value(),
            config_file=settings.llm_config,
            clock=clock,
            memory_hours=settings.memory_ttl_hours,
        )
        await llm.start()  # builds and warms the chain; unconfigured is fine
        channels = ChannelRegistry([SimulatorChannel(events)])
        url_signer = UrlSigner(settings.secret_key.get_secret_value())
        media = build_media_store(settings.media, data_dir=settings.data_dir, signer=url_signer)
        if settings.media.backend == "s3" and settings.media.s3_create_bucket:
            from bot.media.s3 import S3MediaStore

            assert isinstance(media, S3MediaStore)
            await media.ensure_bucket()
        jobs = JobQueue(
            database_url,
            max_attempts=settings.job_max_attempts,
            retry_base_seconds=settings.job_retry_base_seconds,
        )
        outbox = OutboxSender(sessions=sessions, channels=channels, metrics=metrics)
        handoff = HandoffService(
            sessions, config=settings.handoff, publisher=events, outbox=outbox, memory=memory,
            clock=clock,
        )
        inbox = InboxQueries(
            sessions, config=settings.handoff, clock=clock,
            summarizer=SummarizerPort(summarizer, clock=clock) if summarizer else None,
        )
        pipeline = Pipeline(
            sessions=sessions,
            memory=memory,
            responder=responder
            or RuleResponder(Persona(settings.bot_name, settings.business_name, settings.language)),
            outbox=outbox,
            events=events,
            metrics=metrics,
            clock=clock,
            memory_ttl=timedelta(hours=settings.memory_ttl_hours),
            max_attempts=settings.job_max_attempts,
            handoff=handoff,
        )
        jobs.register(pipeline.process_conversation)
        campaign_scheduler = CampaignScheduler(
            sessions=sessions, outbox=outbox, clock=clock,
            short_wait_seconds=settings.campaigns.short_wait_seconds,
            run_budget_seconds=settings.campaigns.run_budget_seconds,
        )
        jobs.register_campaigns(campaign_scheduler.run)
        jobs.register_periodic(
            "atiende.handoff_idle_timeout", handoff.timeout_idle,
            every_seconds=settings.handoff.timeout_check_seconds,
        )
        await jobs.open()
        return cls(
            settings=settings,
            database_url=database_url,
            redis_url=redis_url,
            engine=engine,
            sessions=sessions,
            redis=redis,
            jobs=jobs,
            metrics=metrics,
            events=events,
            memory=memory,
            channels=channels,
            outbox=outbox,
            pipeline=pipeline,
            ingestor=Ingestor(sessions=sessions, jobs=jobs, metrics=metrics, handoff=handoff),
            reconciler=Reconciler(
                sessions=sessions,
                jobs=jobs,
                outbox=outbox,
                metrics=metrics,
                stalled_seconds=settings.stalled_job_seconds,
                interval_seconds=settings.reconcile_interval_seconds,
                campaigns=campaign_scheduler,
            ),
            auth=AuthService(sessions, limiter=RedisRateLimiter(redis), clock=clock),
            handoff=handoff,
            inbox=inbox,
            clock=clock,
            llm=llm,
            media=media,
            url_signer=url_signer,
            campaigns=CampaignService(
                sessions=sessions, ticks=jobs, clock=clock,
                default_region=settings.default_region,
                max_csv_rows=settings.campaigns.max_csv_rows,
            ),
            campaign_scheduler=campaign_scheduler,
        )

    def start_worker(self) -> None:
        """Run the job worker and the reconciler as tasks of this process."""
        heartbeat = max(0.5, min(10.0, self.settings.stalled_job_seconds / 4))
        self._tasks.append(
            asyncio.create_task(
                self.jobs.run_worker(
                    concurrency=self.settings.worker_concurrency,
                    heartbeat_seconds=heartbeat,
                    stalled_seconds=self.settings.stalled_job_seconds,
                ),
                name="atiende-worker",
            )
        )
        self._tasks.append(
            asyncio.create_task(self.reconciler.run_forever(), name="atiende-reconciler")
        )
        self.llm.start_watching()  # chain edits saved by another process

    async def stop_worker(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=15)
        self._tasks.clear()

    async def close(self) -> None:
        await self.stop_worker()
        await self.llm.close()
        await self.jobs.close()
        await self.redis.aclose()
        await self.engine.dispose()
