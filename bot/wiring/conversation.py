"""Wiring of the message path: work list, memory, outbox with pacing, pipeline, ingest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.answering.responder import Responder
from bot.conversation.channel import ChannelRegistry
from bot.conversation.history import HistoryLoader
from bot.conversation.inbound_queue import InboundQueue
from bot.conversation.ingest import Ingestor
from bot.conversation.outbox import OutboxSender
from bot.conversation.pacing import Pacer
from bot.conversation.pipeline import Pipeline
from bot.infra.jobs import JobQueue
from bot.infra.redis_adapter import ConversationMemory, TokenBucket
from bot.media import MediaStore
from bot.speech.service import SpeechService
from bot.wiring.core import Core
from handoff.service import HandoffService


@dataclass
class Delivery:
    """Durable work (jobs, the inbound list), conversation memory and the outbox."""

    jobs: JobQueue
    inbound: InboundQueue
    memory: ConversationMemory
    outbox: OutboxSender


def build_delivery(core: Core, channels: ChannelRegistry) -> Delivery:
    settings, clock = core.settings, core.clock
    jobs = core.job_queue()
    memory = ConversationMemory(
        core.redis,
        ttl=timedelta(hours=settings.memory_ttl_hours),
        max_turns=settings.memory_max_turns,
        clock=clock,
        loader=HistoryLoader(core.sessions, limit=settings.memory_max_turns),
    )
    pacer = Pacer(
        settings.channels.pacing, bucket=TokenBucket(core.redis), clock=clock,
        timezone=settings.business_timezone,
    )
    outbox = OutboxSender(
        sessions=core.sessions, fast=core.autocommit, channels=channels, metrics=core.metrics,
        pacer=pacer, scheduler=jobs,
    )
    inbound = InboundQueue(
        core.database_url, core.autocommit, retry_base_seconds=settings.job_retry_base_seconds
    )
    return Delivery(jobs, inbound, memory, outbox)


@dataclass
class Processing:
    """What turns stored messages into replies, and what stores them."""

    pipeline: Pipeline
    ingestor: Ingestor


def build_processing(
    core: Core, delivery: Delivery, *, responder: Responder, media: MediaStore,
    speech: SpeechService, handoff: HandoffService,
) -> Processing:
    settings = core.settings
    pipeline = Pipeline(
        fast=core.autocommit, sessions=core.sessions, memory=delivery.memory,
        responder=responder, outbox=delivery.outbox, events=core.events,
        metrics=core.metrics, clock=core.clock,
        memory_ttl=timedelta(hours=settings.memory_ttl_hours),
        max_attempts=settings.job_max_attempts, media=media, speech=speech, handoff=handoff,
    )
    ingestor = Ingestor(
        sessions=core.sessions, fast=core.autocommit, inbound=delivery.inbound,
        metrics=core.metrics, handoff=handoff,
    )
    return Processing(pipeline, ingestor)
