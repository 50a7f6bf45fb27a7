"""When a step is due, and what to do with a due step: pure functions of a given ``now``.

The tick passes its clock in, so tests drive days of follow-ups with a fake clock.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.campaigns.templating import TemplateError, render, values_for
from bot.sequences.values import CLOUD_CHANNEL, Step
from handoff.ownership import Owner

__all__ = ["Action", "Decision", "Due", "decide", "first_due", "next_due", "SERVICE_WINDOW"]

SERVICE_WINDOW = timedelta(hours=24)  # the Cloud API's customer-service window
MIN_GAP = timedelta(minutes=1)  # two steps of one enrollment never go out together


def _windowed(step: Step, due: datetime, timezone: str) -> datetime:
    window = step.window(timezone)
    return window.next_open(due) if window is not None else due


def first_due(steps: Sequence[Step], enrolled_at: datetime, timezone: str) -> datetime:
    """When the first step goes out: its delay after enrollment, inside its hours."""
    return _windowed(steps[0], enrolled_at + steps[0].delay, timezone)


def next_due(
    steps: Sequence[Step], index: int, *, enrolled_at: datetime, now: datetime, timezone: str
) -> datetime | None:
    """When step ``index`` goes out, the previous one having gone out ``now``; None after
    the last step."""
    if index >= len(steps):
        return None
    step = steps[index]
    base = enrolled_at if step.after == "enrollment" else now
    return _windowed(step, max(base + step.delay, now + MIN_GAP), timezone)


class Action(enum.StrEnum):
    SEND = "send"  # into the outbox (text, or the template outside the 24-hour window)
    BY_HAND = "by_hand"  # skipped into the "to do by hand" list
    WAIT = "wait"  # not now: due again at ``until``
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str | None = None
    text: str | None = None
    template: dict[str, Any] | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Due:
    """One due enrollment and everything its decision depends on."""

    enrollment_id: uuid.UUID
    conversation_id: uuid.UUID
    step_index: int
    steps: tuple[Step, ...]
    timezone: str
    on_reply: str
    on_human: str
    on_opt_out: str
    sequence_active: bool
    channel: str
    owner: str
    owner_changed_at: datetime | None
    last_inbound_at: datetime | None
    opted_out: bool
    blocked: bool
    replied: bool
    paused_reason: str | None
    previous_status: str | None
    phone: str
    name: str | None
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def step(self) -> Step:
        return self.steps[self.step_index]


def decide(due: Due, now: datetime, *, recheck: timedelta) -> Decision:
    """The rules before each step, in order: the sequence still exists, the contact is
    not blocked, not opted out, has not replied, no human holds the conversation, the
    previous step did not fail, the step's hours are open; then text, template or hand."""
    if not due.sequence_active:
        return Decision(Action.STOP, "sequence_deleted")
    if due.blocked:
        return Decision(Action.STOP, "probably_blocked")
    if due.opted_out:
        if due.on_opt_out == "stop":
            return Decision(Action.STOP, "opted_out")
        return Decision(Action.WAIT, "opted_out", until=now + recheck)
    waited = _reply_or_owner(due, now, recheck)
    if waited is not None:
        return waited
    if due.previous_status == "failed":
        return Decision(Action.STOP, "send_failed")
    window = due.step.window(due.timezone)
    if window is not None and not window.is_open(now):
        return Decision(Action.WAIT, None, until=window.next_open(now))
    return _message(due, now)


def _reply_or_owner(due: Due, now: datetime, recheck: timedelta) -> Decision | None:
    step = due.step
    if due.replied and due.on_reply == "stop":
        return Decision(Action.STOP, "replied")
    if due.replied and due.on_reply == "pause":
        # wait until the customer has been quiet as long as this step's delay
        quiet = _windowed(step, (due.last_inbound_at or now) + step.delay, due.timezone)
        if quiet > now:
            return Decision(Action.WAIT, "replied", until=quiet)
    if due.owner in (Owner.HUMAN.value, Owner.QUEUED.value):
        if due.on_human == "stop":
            return Decision(Action.STOP, "human_owner")
        return Decision(Action.WAIT, "human_owner", until=now + recheck)
    if due.paused_reason == "human_owner" and due.owner_changed_at is not None:
        # back with the bot: the step's delay counts again from the handback
        resume = _windowed(step, due.owner_changed_at + step.delay, due.timezone)
        if resume > now:
            return Decision(Action.WAIT, None, until=resume)
    return None


def _message(due: Due, now: datetime) -> Decision:
    step = due.step
    values = values_for(due.name, due.phone, due.fields)
    try:
        text = render(step.text, values)
    except TemplateError as exc:
        return Decision(Action.BY_HAND, f"missing_value: {exc}", text=step.text)
    window_closed = due.last_inbound_at is None or now - due.last_inbound_at >= SERVICE_WINDOW
    if due.channel != CLOUD_CHANNEL or not window_closed:
        return Decision(Action.SEND, text=text)
    if step.template is None:
        return Decision(Action.BY_HAND, "outside_24h_window", text=text)
    parameters = []
    for name in step.template.params:
        value = values.get(name, "")
        if not value.strip():
            return Decision(Action.BY_HAND, f"missing_value: no value for {{{name}}}", text=text)
        parameters.append({"type": "text", "text": value})
    template: dict[str, Any] = {"name": step.template.name, "language": step.template.language}
    if parameters:
        template["components"] = [{"type": "body", "parameters": parameters}]
    return Decision(Action.SEND, text=text, template=template)
