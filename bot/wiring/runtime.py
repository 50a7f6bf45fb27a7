"""The full runtime of an Atiende server or worker: every area, wired once from Settings.

``Runtime.create`` composes the per-area builders of this package (core, media,
channels, message path, answering, staff, campaigns, sequences, customer data). A process
that needs less builds less: CLI commands that touch the database only use
``bot.wiring.core.core_for``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.answering.generation import AnswerGenerator, IntentClassifier, Summarizer
from bot.answering.intents import IntentRouter
from bot.answering.responder import Responder, Warms
from bot.blocking import BlockDetector, BlockedContacts
from bot.campaigns import CampaignScheduler, CampaignService
from bot.channels.cloud_api import GraphApi
from bot.channels.cloud_webhook import CloudWebhook
from bot.channels.receipts import ReceiptRecorder
from bot.channels.supervisor import SessionFactory
from bot.channels.wiring import WhatsAppNumbers
from bot.clock import Clock, system_clock
from bot.conversation.channel import ChannelRegistry
from bot.conversation.inbound_queue import InboundQueue
from bot.conversation.ingest import Ingestor
from bot.conversation.outbox import OutboxSender
from bot.conversation.pipeline import Pipeline
from bot.conversation.reconciler import CampaignTicks, Reconciler
from bot.db import AutocommitPool
from bot.infra.jobs import JobQueue
from bot.infra.redis_adapter import ConversationMemory, EventBus, RedisClient
from bot.integrations.targets import check_target
from bot.integrations.webhooks import WebhookService
from bot.learning import LearningService
from bot.llm import LLMMetrics, LLMService
from bot.media import MediaStore, UrlSigner
from bot.media.attachments import AgentAttachments
from bot.metrics import Metrics
from bot.privacy import CustomerData
from bot.sequences import HandList, SequenceService, SequenceTicker
from bot.settings import Settings
from bot.speech.agent_notes import AgentVoiceNotes
from bot.speech.service import SpeechService
from bot.wiring.answering import build_answering
from bot.wiring.campaigns import build_campaigns
from bot.wiring.channels import build_channels, build_inlets
from bot.wiring.conversation import Delivery, build_delivery, build_processing
from bot.wiring.core import Core
from bot.wiring.integrations import build_webhooks
from bot.wiring.learning import build_learning
from bot.wiring.media import agent_voice_notes, build_media
from bot.wiring.privacy import build_privacy, schedule_privacy
from bot.wiring.sequences import build_sequences
from bot.wiring.staff import build_staff
from handoff.apikeys import ApiKeys
from handoff.audit import AuditLog
from handoff.auth import AuthService
from handoff.inbox import InboxQueries
from handoff.schedule import ScheduleBook
from handoff.service import HandoffService
from handoff.workspace import Workspace
from knowledge.embeddings import Embedder
from knowledge.intents import IntentExamples
from knowledge.retrieval import Retriever
from knowledge.store import KnowledgeStore

# the worker's tasks that load models at start, then end (not dead)
_WARMING = frozenset({"atiende-answers-warm", "atiende-speech-warm"})


def _parts(*bundles: Any) -> dict[str, Any]:
    """The fields of the area bundles, by name (they are the runtime's field names)."""
    return {
        f.name: getattr(bundle, f.name) for bundle in bundles for f in dataclasses.fields(bundle)
    }


@dataclass
class Runtime:
    """Everything a server or worker process of Atiende needs, wired together."""

    settings: Settings
    database_url: str
    redis_url: str
    engine: AsyncEngine
    autocommit: AutocommitPool  # psycopg pool in autocommit: the hot paths' plain SQL
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
    api_keys: ApiKeys
    workspace: Workspace
    schedule: ScheduleBook
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
    graph: GraphApi
    cloud_webhook: CloudWebhook
    whatsapp: WhatsAppNumbers
    media: MediaStore
    url_signer: UrlSigner
    speech: SpeechService
    agent_voice: AgentVoiceNotes
    agent_files: AgentAttachments
    campaigns: CampaignService
    campaign_scheduler: CampaignScheduler
    webhooks: WebhookService
    privacy: CustomerData
    sequences: SequenceService
    sequence_ticker: SequenceTicker
    hand_list: HandList
    blocked: BlockedContacts
    block_detector: BlockDetector
    learning: LearningService
    core: Core
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
        second_embedder: Embedder | None = None,
        answer_generator: AnswerGenerator | None = None,
        intent_classifier: IntentClassifier | None = None,
    ) -> Runtime:
        """Build every area; the keyword arguments replace one part (tests, benchmarks)."""
        core = await Core.open(settings, database_url=database_url, redis_url=redis_url,
                               clock=clock)
        llm = await start_llm(core)
        media = await build_media(settings, speech=speech)
        channels = build_channels(core, media.media)
        delivery = build_delivery(core, channels.channels)
        answering = build_answering(
            settings, core.sessions, embedder=embedder, second=second_embedder,
            responder=responder,
            answer_generator=answer_generator or llm.generator,
            intent_classifier=intent_classifier or llm.classifier,
        )
        staff = build_staff(core, delivery, summarizer=summarizer or llm.summarizer)
        await staff.schedule.refresh()  # the business hours an admin saved, if any
        processing = build_processing(
            core, delivery, responder=answering.responder, media=media.media,
            speech=media.speech, handoff=staff.handoff,
        )
        jobs = delivery.jobs
        campaigns = build_campaigns(core, jobs, delivery.outbox)
        webhooks = build_webhooks(core, jobs)
        sequences = build_sequences(core, jobs, delivery.outbox)
        jobs.register_periodic(
            "atiende.handoff_idle_timeout", staff.handoff.timeout_idle,
            every_seconds=settings.handoff.timeout_check_seconds,
        )
        learning = build_learning(settings, core.sessions, answering.knowledge,
                                  drafter=llm.drafter)
        jobs.register_periodic("atiende.knowledge_suggestions", learning.tick,
                               every_seconds=settings.suggestions.harvest_seconds)
        privacy = build_privacy(core, media=media.media, memory=delivery.memory)
        schedule_privacy(jobs, privacy)
        await jobs.open()
        inlets = build_inlets(
            core, channels, ingestor=processing.ingestor, jobs=jobs, media=media.media,
            whatsapp_sessions=whatsapp_sessions,
        )
        targeting = inlets.whatsapp.targeting
        drain = delivery.outbox.drain_number
        jobs.register_send(targeting.guard(drain) if targeting else drain)
        reconciler = build_reconciler(core, delivery, campaigns.campaign_scheduler)
        return cls(
            **_parts(core, media, channels, delivery, answering, staff, processing, campaigns,
                     sequences, inlets),
            llm=llm, reconciler=reconciler, core=core, webhooks=webhooks, learning=learning,
            privacy=privacy,
            agent_voice=agent_voice_notes(settings, media.media, staff.handoff),
            agent_files=AgentAttachments(media=media.media, handoff=staff.handoff),
        )

    def start_worker(self) -> None:
        """Run the job worker and the reconciler as tasks of this process."""
        settings = self.settings
        heartbeat = max(0.5, min(10.0, settings.stalled_job_seconds / 4))
        self._spawn("atiende-worker", self.jobs.run_worker(
            concurrency=settings.worker_concurrency, heartbeat_seconds=heartbeat,
            stalled_seconds=settings.stalled_job_seconds,
        ))
        self._spawn("atiende-inbound", self.inbound.run(
            self.pipeline.process_conversations, concurrency=settings.inbound_concurrency,
            batch=settings.worker_batch, lease_seconds=settings.stalled_job_seconds,
        ))
        self._spawn("atiende-reconciler", self.reconciler.run_forever())
        self.watch_settings()
        self.llm.start_watching()  # chain edits saved by another process
        if self.whatsapp.pool is not None:
            self._spawn("atiende-whatsapp", self.whatsapp.pool.run_forever())
        if settings.knowledge.warm_at_start and isinstance(self.responder, Warms):
            self._spawn("atiende-answers-warm", self._warm_answers(self.responder))
        if settings.speech.warm_at_start:
            self._spawn("atiende-speech-warm", self._warm_speech())

    def watch_settings(self) -> None:
        """Follow settings edited in the pages by another process (business hours)."""
        if not any(t.get_name() == "atiende-schedule-watch" for t in self._tasks):
            self._spawn("atiende-schedule-watch", self.schedule.watch())

    def dead_tasks(self) -> list[str]:
        """The worker's background tasks that ended (they should run until shutdown)."""
        return [t.get_name() for t in self._tasks
                if t.done() and t.get_name() not in _WARMING]

    def _spawn(self, name: str, work: Any) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))

    async def _warm_answers(self, responder: Warms) -> None:
        """Load the answering models now, so the first question does not wait for them;
        a failure is logged and the first question loads them (or reports why)."""
        from bot.logs import get_logger

        started = time.monotonic()
        try:
            await responder.warm()
        except Exception as exc:  # a worker must start even when a model cannot load
            get_logger("atiende.answering").warning("answering.warm_failed", error=str(exc))
        else:
            get_logger("atiende.answering").info(
                "answering.warm", seconds=round(time.monotonic() - started, 2))

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
        await self.core.close()


async def start_llm(core: Core) -> LLMService:
    """The LLM chain (file or the admin's saved chain), built and warmed; unconfigured is
    fine: every port then answers ``None`` at once."""
    settings = core.settings
    llm = LLMService(
        sessions=core.sessions, metrics=LLMMetrics(core.metrics.registry),
        secret_key=settings.secret_key.get_secret_value(), config_file=settings.llm_config,
        clock=core.clock, memory_hours=settings.memory_ttl_hours,
        check_url=functools.partial(
            check_target,
            allow_private=settings.env != "production" or settings.llm_allow_private),
    )
    await llm.start()
    return llm


def build_reconciler(core: Core, delivery: Delivery, campaigns: CampaignTicks) -> Reconciler:
    """What puts back whatever a crash left behind (stalled work, unsent replies)."""
    settings = core.settings
    return Reconciler(
        sessions=core.sessions, jobs=delivery.jobs, inbound=delivery.inbound,
        outbox=delivery.outbox, metrics=core.metrics,
        stalled_seconds=settings.stalled_job_seconds,
        interval_seconds=settings.reconcile_interval_seconds,
        campaigns=campaigns, send_claim_seconds=settings.send_claim_seconds,
    )
