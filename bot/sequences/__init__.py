"""Follow-up sequences: timed steps per contact, until the customer answers.

``service`` (definitions, enrollments by agent, API and contact list, stop, the inbox
view), ``ticker`` (the periodic tick that finds due steps by an indexed query and queues
them through the outbox), ``timing`` (when a step is due and the rules before each
step), ``intents`` (automatic enrollment by intent), ``tasks`` (the "to do by hand"
list), ``analytics`` (per-step figures), ``enrolling`` (the one enrollment path),
``validation``, ``values`` and ``models``.
"""

from bot.sequences.service import SequenceService
from bot.sequences.tasks import HandList
from bot.sequences.ticker import SequenceTicker, TickResult
from bot.sequences.values import (
    EnrollmentView,
    EnrollReport,
    SequenceDraft,
    SequenceView,
    Step,
    StepStats,
    StepTemplate,
    TaskView,
)

__all__ = [
    "EnrollReport",
    "EnrollmentView",
    "HandList",
    "SequenceDraft",
    "SequenceService",
    "SequenceTicker",
    "SequenceView",
    "Step",
    "StepStats",
    "StepTemplate",
    "TaskView",
    "TickResult",
]
