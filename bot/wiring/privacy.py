"""Wiring of customer data rights: export, erasure, retention and their periodic job."""

from __future__ import annotations

from datetime import timedelta

from bot.conversation.history import HistoryLoader
from bot.infra.jobs import JobQueue
from bot.infra.redis_adapter import ConversationMemory
from bot.media import MediaStore
from bot.privacy import CustomerData, Eraser, Exporter, PrivacyMetrics, Retention
from bot.privacy.erasure import MemoryEraser
from bot.wiring.core import Core
from bot.wiring.media import media_store

RETENTION_TASK = "atiende.privacy_maintenance"


def build_privacy(core: Core, *, media: MediaStore, memory: MemoryEraser) -> CustomerData:
    settings = core.settings.privacy
    metrics = PrivacyMetrics(core.metrics.registry)
    return CustomerData(
        exporter=Exporter(sessions=core.sessions, media=media),
        eraser=Eraser(sessions=core.sessions, media=media, memory=memory, metrics=metrics,
                      settle_seconds=settings.settle_seconds),
        retention=Retention(sessions=core.sessions, media=media, settings=settings,
                            metrics=metrics),
        settings=settings,
    )


def schedule_privacy(jobs: JobQueue, privacy: CustomerData) -> None:
    """The periodic job (one worker of the cluster runs it): unfinished erasures, then
    retention, every ``ATIENDE_PRIVACY__RETENTION_EVERY_MINUTES``."""
    jobs.register_periodic_minutes(
        RETENTION_TASK, privacy.maintain,
        every_minutes=privacy.settings.retention_every_minutes,
    )


async def privacy_for(core: Core) -> CustomerData:
    """The services for a short-lived command (``atiende contacts …``, a restore): the
    media store and the memory on the core's connections, nothing else."""
    settings = core.settings
    memory = ConversationMemory(
        core.redis, ttl=timedelta(hours=settings.memory_ttl_hours),
        max_turns=settings.memory_max_turns, clock=core.clock,
        loader=HistoryLoader(core.sessions, limit=settings.memory_max_turns),
    )
    return build_privacy(core, media=await media_store(settings), memory=memory)
