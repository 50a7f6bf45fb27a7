"""Sequence value types: a step and its timing, a draft, and what the API shows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from bot.campaigns.schedule import Window
from bot.channels.simulator import SIMULATOR, SIMULATOR_ACCOUNT

__all__ = [
    "CHANNELS",
    "CLOUD_CHANNEL",
    "MAX_DELAY_MINUTES",
    "EnrollReport",
    "EnrollmentView",
    "SequenceDraft",
    "SequenceView",
    "Step",
    "StepStats",
    "StepTemplate",
    "TaskView",
]

CLOUD_CHANNEL = "whatsapp_cloud"  # bot.channels.cloud_api.CLOUD_CHANNEL
CHANNELS = (SIMULATOR, "whatsapp", CLOUD_CHANNEL)
MAX_DELAY_MINUTES = 366 * 24 * 60  # a renewal a year later is a follow-up; decades are not
END_OF_DAY = time(23, 59, 59, 999999)


@dataclass(frozen=True, slots=True)
class StepTemplate:
    """An approved Cloud API template, sent when the 24-hour window is closed; ``params``
    name the variables filling its body ``{{1}}``, ``{{2}}``…"""

    name: str
    language: str = "es_MX"
    params: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """One follow-up: its text, when (a delay after enrollment or after the previous
    step) and the local days and hours it may go out in (None: any time)."""

    delay_minutes: int
    text: str
    after: str = "previous"  # previous | enrollment
    template: StepTemplate | None = None
    days: tuple[int, ...] | None = None
    start: time | None = None
    end: time | None = None

    @property
    def delay(self) -> timedelta:
        return timedelta(minutes=self.delay_minutes)

    def window(self, timezone: str) -> Window | None:
        """The allowed days and hours (WindowError when they cannot work)."""
        if self.days is None and self.start is None and self.end is None:
            return None
        return Window(
            days=self.days if self.days is not None else (0, 1, 2, 3, 4, 5, 6),
            start=self.start or time(0), end=self.end or END_OF_DAY, timezone=timezone,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "delay_minutes": self.delay_minutes, "after": self.after, "text": self.text,
            "template": None, "days": list(self.days) if self.days is not None else None,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
        }
        if self.template is not None:
            data["template"] = {"name": self.template.name, "language": self.template.language,
                                "params": list(self.template.params)}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        tpl = data.get("template")
        return cls(
            delay_minutes=int(data["delay_minutes"]), text=str(data["text"]),
            after=str(data.get("after") or "previous"),
            template=StepTemplate(tpl["name"], tpl.get("language") or "es_MX",
                                  tuple(tpl.get("params") or ())) if tpl else None,
            days=tuple(int(d) for d in data["days"]) if data.get("days") is not None else None,
            start=time.fromisoformat(data["start"]) if data.get("start") else None,
            end=time.fromisoformat(data["end"]) if data.get("end") else None,
        )


@dataclass(frozen=True, slots=True)
class SequenceDraft:
    """What an admin asks for; validated by ``SequenceService.create``.

    Rules, per sequence: a customer reply since enrollment ``stop``s the sequence,
    ``pause``s it (the next step waits until the customer has been quiet as long as its
    delay) or is ignored (``continue``); a human owner and an opt-out ``stop`` it or
    ``pause`` it until the conversation is the bot's again / the customer opts back in.
    """

    name: str
    steps: tuple[Step, ...]
    on_reply: str = "stop"
    on_human: str = "pause"
    on_opt_out: str = "stop"
    channel: str = SIMULATOR
    account: str = SIMULATOR_ACCOUNT
    timezone: str = "America/Mexico_City"
    auto_intent: str | None = None
    auto_escalated_only: bool = False


@dataclass(frozen=True, slots=True)
class StepStats:
    """What one step did: ``sent`` ⊇ ``delivered`` ⊇ ``read``; ``stopped`` counts the
    enrollments that ended while waiting for this step."""

    step: int
    queued: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    replied: int = 0
    failed: int = 0
    cancelled: int = 0
    by_hand: int = 0
    stopped: int = 0


@dataclass(frozen=True, slots=True)
class SequenceView:
    id: uuid.UUID
    name: str
    channel: str
    account: str
    timezone: str
    steps: list[dict[str, Any]]
    on_reply: str
    on_human: str
    on_opt_out: str
    stop_on_reply: bool
    auto_intent: str | None
    auto_escalated_only: bool
    status: str
    created_by: uuid.UUID | None
    created_at: datetime
    enrollments: dict[str, int] = field(default_factory=dict)  # per state
    analytics: list[StepStats] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EnrollmentView:
    id: uuid.UUID
    sequence_id: uuid.UUID
    sequence_name: str
    phone: str
    name: str | None
    conversation_id: uuid.UUID
    state: str
    steps_sent: int
    next_step: int
    total_steps: int
    stop_reason: str | None
    paused_reason: str | None
    source: str
    enrolled_at: datetime
    due_at: datetime | None
    finished_at: datetime | None
    new_contact: bool = False


@dataclass(frozen=True, slots=True)
class EnrollReport:
    """A contact list enrolled: how many, and every row left out with why."""

    enrolled: int
    skipped: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class TaskView:
    """A step to do by hand (the 24-hour window was closed and no template fits…)."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    contact_phone: str
    contact_name: str | None
    sequence_id: uuid.UUID
    sequence_name: str
    step: int
    text: str | None
    reason: str | None
    created_at: datetime
    done_at: datetime | None
    done_by: uuid.UUID | None
