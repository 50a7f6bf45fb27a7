"""Wiring of follow-up sequences and blocked-contact detection: the services, the tick
and the detector, with their periodic jobs registered on the queue."""

from __future__ import annotations

from dataclasses import dataclass

from bot.blocking import BlockDetector, BlockedContacts
from bot.conversation.outbox import OutboxSender
from bot.infra.jobs import JobQueue
from bot.sequences import HandList, SequenceService, SequenceTicker
from bot.wiring.core import Core

SEQUENCE_TICK = "atiende.sequences_tick"
BLOCK_CHECK = "atiende.blocked_contacts"


@dataclass
class Sequences:
    sequences: SequenceService
    sequence_ticker: SequenceTicker
    hand_list: HandList
    blocked: BlockedContacts
    block_detector: BlockDetector


def build_sequences(core: Core, jobs: JobQueue, outbox: OutboxSender) -> Sequences:
    """Everything, with the tick and the detector registered as periodic jobs (unless
    their period is 0 in the settings)."""
    settings, sessions, clock = core.settings, core.sessions, core.clock
    ticker = SequenceTicker(
        sessions=sessions, outbox=outbox, clock=clock, config=settings.sequences,
        paced_channels=settings.channels.pacing.channels, metrics=core.metrics,
    )
    detector = BlockDetector(sessions=sessions, config=settings.blocking, clock=clock,
                             metrics=core.metrics)
    if settings.sequences.tick_seconds:
        jobs.register_periodic(SEQUENCE_TICK, ticker.tick,
                               every_seconds=settings.sequences.tick_seconds)
    if settings.blocking.enabled and settings.blocking.check_seconds:
        jobs.register_periodic(BLOCK_CHECK, detector.run,
                               every_seconds=settings.blocking.check_seconds)
    return Sequences(
        sequences=SequenceService(sessions=sessions, clock=clock, due_now=ticker),
        sequence_ticker=ticker,
        hand_list=HandList(sessions=sessions, clock=clock),
        blocked=BlockedContacts(sessions=sessions, clock=clock), block_detector=detector,
    )
