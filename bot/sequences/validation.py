"""The rules a sequence definition must follow before it is stored (422 with the reason)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.campaigns.schedule import WindowError
from bot.campaigns.templating import BUILTIN_VARIABLES, variables
from bot.errors import SequenceRejected
from bot.sequences.values import CHANNELS, MAX_DELAY_MINUTES, SequenceDraft, Step

__all__ = ["MAX_STEPS", "validate_draft"]

MAX_STEPS = 20


def validate_draft(draft: SequenceDraft) -> None:
    """Raise ``SequenceRejected`` naming the first thing that cannot work."""
    if not draft.name.strip():
        raise SequenceRejected("the sequence needs a name")
    if not draft.steps:
        raise SequenceRejected("a sequence needs at least one step")
    if len(draft.steps) > MAX_STEPS:
        raise SequenceRejected(f"a sequence has at most {MAX_STEPS} steps")
    if draft.channel not in CHANNELS:
        raise SequenceRejected(f"unknown channel {draft.channel!r}; one of {', '.join(CHANNELS)}")
    try:
        ZoneInfo(draft.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SequenceRejected(f"unknown time zone {draft.timezone!r}") from exc
    for rule, value, allowed in (("on_reply", draft.on_reply, ("stop", "pause", "continue")),
                                 ("on_human", draft.on_human, ("stop", "pause")),
                                 ("on_opt_out", draft.on_opt_out, ("stop", "pause"))):
        if value not in allowed:
            raise SequenceRejected(f"{rule} must be one of {', '.join(allowed)}")
    offset = -1  # the earliest minute after enrollment the previous step can go out
    for number, step in enumerate(draft.steps, start=1):
        offset = _check_step(number, step, offset, draft)
    if draft.auto_intent is not None:
        _check_automatic(draft)


def _check_step(number: int, step: Step, previous: int, draft: SequenceDraft) -> int:
    where = f"step {number}"
    if not 0 <= step.delay_minutes <= MAX_DELAY_MINUTES:
        raise SequenceRejected(
            f"{where}: delay_minutes must be between 0 and {MAX_DELAY_MINUTES} (366 days)"
        )
    if step.after not in ("previous", "enrollment"):
        raise SequenceRejected(f"{where}: after must be 'previous' or 'enrollment'")
    if number > 1 and step.after == "previous" and step.delay_minutes < 1:
        raise SequenceRejected(
            f"{where}: 0 minutes after the previous step would arrive together with it; "
            "wait at least 1 minute"
        )
    if step.after == "enrollment" and step.delay_minutes <= previous:
        raise SequenceRejected(
            f"{where}: {step.delay_minutes} minutes after enrollment is not after the "
            f"previous step ({previous} minutes at the earliest)"
        )
    if not step.text.strip():
        raise SequenceRejected(f"{where}: the text is empty")
    if len(step.text) > 4096:
        raise SequenceRejected(f"{where}: the text is longer than 4096 characters")
    try:
        step.window(draft.timezone)
    except WindowError as exc:
        raise SequenceRejected(f"{where}: allowed hours: {exc}") from exc
    # a template is kept even on a sequence of another number: enrollments from the inbox
    # or an intent follow up on the conversation's own number, which may be a Cloud one
    if step.template is not None and not step.template.name.strip():
        raise SequenceRejected(f"{where}: the template needs a name")
    if step.after == "enrollment":
        return step.delay_minutes
    return previous + max(step.delay_minutes, 0 if number == 1 else 1)


def _check_automatic(draft: SequenceDraft) -> None:
    """Automatic enrollments have no list behind them: only the built-in variables."""
    assert draft.auto_intent is not None
    if not draft.auto_intent.strip():
        raise SequenceRejected("auto_intent must name an intent")
    for number, step in enumerate(draft.steps, start=1):
        used = variables(step.text) + list(step.template.params if step.template else ())
        custom = [v for v in used if v not in BUILTIN_VARIABLES]
        if custom:
            raise SequenceRejected(
                f"step {number} uses {', '.join(sorted(set(custom)))}, which an automatic "
                f"enrollment has no value for; use only {', '.join(BUILTIN_VARIABLES)}"
            )
