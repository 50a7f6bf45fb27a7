"""The composition root: every long-lived object is built here, from Settings, once."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.answering.generation import AnswerGenerator, IntentClassifier, Summarizer
from bot.answering.intents import IntentRouter
from bot.answering.knowledge import KnowledgeResponder
from bot.answering.responder import Persona, Responder
from bot.campaigns import CampaignScheduler, CampaignService
from bot.channels.base import ChannelRegistry
from bot.channels.cloud_api import CloudApiChannel, CloudMediaFetcher, GraphApi, ServiceWindow
from bot.channels.cloud_webhook import CloudWebhook
from bot.channels.receipts import ReceiptRecorder
from bot.channels.simulator import SimulatorChannel
from bot.channels.supervisor import SessionFactory
from bot.channels.wiring import WhatsAppNumbers, build_whatsapp, neonize_factory
from bot.clock import Clock, system_clock
from bot.conversation.history import HistoryLoader
from bot.conversation.inbound_queue import InboundQueue
from bot.conversation.ingest import Ingestor
from bot.conversation.outbox import OutboxSender
from bot.conversation.pacing import Pacer
from bot.conversation.pipeline import Pipeline
from bot.conversation.reconciler import Reconciler
from bot.db import AutocommitPool, create_engine, session_factory
from bot.infra import redis_adapter
from bot.infra.jobs import JobQueue
from bot.infra.redis_adapter import (
    ConversationMemory,
    EventBus,
    RedisClient,
    RedisRateLimiter,
    TokenBucket,
)
from bot.llm import LLMMetrics, LLMService
from bot.media import MediaStore, UrlSigner, build_media_store
from bot.messages import MessageKind
from bot.metrics import Metrics
from bot.settings import Settings
from bot.speech.agent_notes import AgentVoiceNotes
from bot.speech.outbound import to_ogg_opus
from bot.speech.service import SpeechService, build_speech
from bot.wiring.adapters import SummarizerPort
from handoff.audit import AuditLog
from handoff.auth import AuthService
from handoff.inbox import InboxQueries
from handoff.service import HandoffService
from knowledge.config import KnowledgeConfig
from knowledge.embeddings import Embedder, HashingEmbedder
from knowledge.intents import IntentExamples
from knowledge.retrieval import Retriever
from knowledge.store import KnowledgeStore
from knowledge.synonyms import load_synonyms


@dataclass
class Runtime:
    """Everything a process of Atiende needs, wired together."""

    settings: Settings
    database_url: str
    redis_url: str
    engine: AsyncEngine
    fast: AutocommitPool
    sessions: async_sessionmaker[AsyncSession]
    redis: RedisClient
    jobs: JobQueue
    inbound: InboundQueue
    metrics: Metrics
    events: EventBus
    memory: ConversationMemory
    channels: ChannelRegistry
    outbox: OutboxSender
    pipeline: Pipeline
    ingestor: Ingestor
    reconciler: Reconciler
    auth: AuthService
    audit: AuditLog
    handoff: HandoffService
    inbox: InboxQueries
    clock: Clock
    llm: LLMService
    knowledge: KnowledgeStore
    responder: Responder
    retriever: Retriever
    intent_examples: IntentExamples
    intent_router: IntentRouter
    http: httpx.AsyncClient
    receipts: ReceiptRecorder
    cloud_webhook: CloudWebhook
    whatsapp: WhatsAppNumbers
    media: MediaStore
    url_signer: UrlSigner
    speech: SpeechService
    agent_voice: AgentVoiceNotes
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
        whatsapp_sessions: SessionFactory | None = None,
        speech: SpeechService | None = None,
        summarizer: Summarizer | None = None,
        embedder: Embedder | None = None,
        answer_generator: AnswerGenerator | None = None,
        intent_classifier: IntentClassifier | None = None,
    ) -> Runtime:
        engine = create_engine(database_url, pool_size=max(5, settings.worker_concurrency + 2))
        sessions = session_factory(engine)
        fast = AutocommitPool(database_url, max_size=settings.worker_concurrency + 2)
        await fast.open()
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
        http = httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))
        receipts = ReceiptRecorder(sessions)
        cloud = settings.whatsapp_cloud
        graph = GraphApi(
            base_url=cloud.graph_url,
            access_token=cloud.access_token.get_secret_value() if cloud.access_token else "",
            http=http,
        )
        url_signer = UrlSigner(settings.secret_key.get_secret_value())
        media = build_media_store(settings.media, data_dir=settings.data_dir, signer=url_signer)
        if settings.media.backend == "s3" and settings.media.s3_create_bucket:
            from bot.media.s3 import S3MediaStore

            assert isinstance(media, S3MediaStore)
            await media.ensure_bucket()
        if cloud.access_token and cloud.phone_number_id:
            channels.add(
                CloudApiChannel(
                    graph=graph, window=ServiceWindow(sessions, clock),
                    default_phone_number_id=cloud.phone_number_id,
                    media=media, to_voice=to_ogg_opus,
                    media_max_bytes=settings.channels.neonize.media_max_bytes,
                )
            )
        speech = speech or build_speech(settings.speech)
        jobs = JobQueue(
            database_url,
            max_attempts=settings.job_max_attempts,
            retry_base_seconds=settings.job_retry_base_seconds,
        )
        inbound = InboundQueue(
            database_url, fast, retry_base_seconds=settings.job_retry_base_seconds
        )
        pacer = Pacer(
            settings.channels.pacing, bucket=TokenBucket(redis), clock=clock,
            timezone=settings.business_timezone,
        )
        outbox = OutboxSender(
            sessions=sessions, fast=fast, channels=channels, metrics=metrics, pacer=pacer,
            scheduler=jobs,
        )
        kcfg = settings.knowledge
        embedder = embedder or build_embedder(kcfg)
        knowledge = KnowledgeStore(sessions, embedder)
        retriever = build_retriever(sessions, embedder, kcfg)
        intent_examples = IntentExamples(sessions, embedder)
        intent_router = IntentRouter(
            store=knowledge, examples=intent_examples,
            classifier=intent_classifier or llm.classifier,
            confident=kcfg.classifier_confident, poll_seconds=kcfg.revision_poll_seconds,
        )
        persona = Persona(settings.bot_name, settings.business_name, settings.language)
        responder = responder or KnowledgeResponder(
            persona=persona, router=intent_router, retriever=retriever, store=knowledge,
            config=kcfg, generator=answer_generator or llm.generator,
        )
        handoff = HandoffService(
            sessions, config=settings.handoff, publisher=events, outbox=outbox, memory=memory,
            clock=clock,
        )
        voice_limits = settings.media.limits_for(MessageKind.VOICE)
        inbox = InboxQueries(
            sessions, config=settings.handoff, clock=clock,
            summarizer=SummarizerPort(summarizer or llm.summarizer, clock=clock),
        )
        pipeline = Pipeline(
            fast=fast,
            sessions=sessions,
            memory=memory,
            responder=responder,
            outbox=outbox,
            events=events,
            metrics=metrics,
            clock=clock,
            memory_ttl=timedelta(hours=settings.memory_ttl_hours),
            max_attempts=settings.job_max_attempts,
            media=media,
            speech=speech,
            handoff=handoff,
        )
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
        ingestor = Ingestor(
            sessions=sessions, fast=fast, inbound=inbound, metrics=metrics, handoff=handoff)
        neonize = settings.channels.neonize
        if whatsapp_sessions is None and neonize.enabled:
            whatsapp_sessions = neonize_factory(neonize, database_url, settings.default_region)
        whatsapp = build_whatsapp(
            neonize, sessions=sessions, redis=redis, ingestor=ingestor, receipts=receipts,
            metrics=metrics, events=events, clock=clock, media=media,
            factory=whatsapp_sessions, jobs=jobs,
        )
        if whatsapp.pool is not None:
            channels.add(whatsapp.channel)
        targeting = whatsapp.targeting
        jobs.register_send(
            targeting.guard(outbox.drain_number) if targeting else outbox.drain_number)
        cloud_webhook = CloudWebhook(
            verify_token=cloud.verify_token.get_secret_value() if cloud.verify_token else None,
            app_secret=cloud.app_secret.get_secret_value() if cloud.app_secret else None,
            ingestor=ingestor, receipts=receipts, clock=clock,
            default_region=settings.default_region,
            fetch_media=CloudMediaFetcher(graph, media, max_bytes=neonize.media_max_bytes)
            if cloud.access_token else None,
        )
        return cls(
            settings=settings,
            database_url=database_url,
            redis_url=redis_url,
            engine=engine,
            fast=fast,
            sessions=sessions,
            redis=redis,
            jobs=jobs,
            inbound=inbound,
            metrics=metrics,
            events=events,
            memory=memory,
            channels=channels,
            outbox=outbox,
            pipeline=pipeline,
            ingestor=ingestor,
            reconciler=Reconciler(
                sessions=sessions,
                jobs=jobs,
                inbound=inbound,
                outbox=outbox,
                metrics=metrics,
                stalled_seconds=settings.stalled_job_seconds,
                interval_seconds=settings.reconcile_interval_seconds,
                campaigns=campaign_scheduler,
            ),
            auth=AuthService(sessions, limiter=RedisRateLimiter(redis), clock=clock),
            audit=AuditLog(sessions),
            handoff=handoff,
            inbox=inbox,
            clock=clock,
            llm=llm,
            knowledge=knowledge,
            responder=responder,
            retriever=retriever,
            intent_examples=intent_examples,
            intent_router=intent_router,
            http=http,
            receipts=receipts,
            cloud_webhook=cloud_webhook,
            whatsapp=whatsapp,
            media=media,
            url_signer=url_signer,
            speech=speech,
            agent_voice=AgentVoiceNotes(
                media=media, handoff=handoff,
                max_bytes=voice_limits.max_bytes if voice_limits else 16 * 1024 * 1024,
                max_seconds=settings.speech.max_duration_seconds,
            ),
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
            asyncio.create_task(
                self.inbound.run(
                    self.pipeline.process_conversations,
                    concurrency=self.settings.inbound_concurrency,
                    batch=self.settings.worker_batch,
                    lease_seconds=self.settings.stalled_job_seconds,
                ),
                name="atiende-inbound",
            )
        )
        self._tasks.append(
            asyncio.create_task(self.reconciler.run_forever(), name="atiende-reconciler")
        )
        self.llm.start_watching()  # chain edits saved by another process
        if self.whatsapp.pool is not None:
            self._tasks.append(
                asyncio.create_task(self.whatsapp.pool.run_forever(), name="atiende-whatsapp")
            )
        if self.settings.speech.warm_at_start:
            self._tasks.append(asyncio.create_task(self._warm_speech(), name="atiende-speech-warm"))

    async def _warm_speech(self) -> None:
        """Load the Whisper model now, so the first voice note does not wait for it."""
        from bot.errors import TranscriptionError
        from bot.logs import get_logger

        try:
            await self.speech.warm()
        except TranscriptionError as exc:
            get_logger("atiende.speech").warning("speech.warm_failed", error=str(exc))

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
        closer = getattr(self.knowledge.embedder, "aclose", None)  # provider embedders
        if closer is not None:
            await closer()
        await self.jobs.close()
        await self.http.aclose()
        await self.redis.aclose()
        await self.fast.close()
        await self.engine.dispose()


def build_retriever(
    sessions: async_sessionmaker[AsyncSession], embedder: Embedder, config: KnowledgeConfig
) -> Retriever:
    """The hybrid retriever as the settings configure it (synonyms file included)."""
    return Retriever(sessions, embedder, candidates=config.candidates,
                     ef_search=config.ef_search,
                     synonyms=load_synonyms(config.synonyms_file))


def build_embedder(config: KnowledgeConfig) -> Embedder:
    """The embedder the settings name (the model loads lazily, on first use)."""
    if config.embedder == "hashing":
        return HashingEmbedder()
    if config.embedder == "litellm":
        from bot.llm.embeddings import ProviderEmbedder

        return ProviderEmbedder(config)
    from knowledge.usem import UsemEmbedder

    return UsemEmbedder(threads=config.embedder_threads)
