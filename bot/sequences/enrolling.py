"""Enrolling one contact, whoever asks (an agent, the API, a contact list, an intent):
the same checks and the same row, inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.blocking import is_blocked
from bot.campaigns.templating import values_for, variables
from bot.errors import NotFound, SequenceConflict, SequenceRejected
from bot.sequences.models import Sequence as SequenceRow
from bot.sequences.models import SequenceEnrollment
from bot.sequences.timing import first_due
from bot.sequences.values import Step
from handoff.conversations import Contact, Conversation, Message, contact_key
from handoff.ownership import Owner

__all__ = [
    "Target", "enroll", "steps_of", "target_by_conversation", "target_by_phone", "used_variables",
]


@dataclass(frozen=True, slots=True)
class Target:
    """Who gets enrolled: a contact on one number (its conversation)."""

    contact_id: uuid.UUID
    conversation_id: uuid.UUID
    phone: str
    name: str | None
    opted_out: bool
    new_contact: bool = False


def steps_of(sequence: SequenceRow) -> tuple[Step, ...]:
    return tuple(Step.from_json(s) for s in sequence.steps)


def used_variables(steps: tuple[Step, ...]) -> list[str]:
    """Every ``{variable}`` the steps' texts and template parameters need."""
    used: list[str] = []
    for step in steps:
        used += variables(step.text)
        if step.template is not None:
            used += list(step.template.params)
    return list(dict.fromkeys(used))


async def target_by_phone(
    session: AsyncSession, *, phone: str, name: str | None, channel: str, account: str
) -> Target:
    """The contact (created if new) and its conversation on ``channel``/``account``."""
    # INSERT … ON CONFLICT DO UPDATE locks the contact row until commit, so an opt-out
    # committed meanwhile waits for this enrollment and then (trigger) stops it.
    contact = (
        await session.execute(
            insert(Contact)
            # a simulator number is the simulator's own contact (never a real customer)
            .values(id=uuid.uuid4(), phone_e164=contact_key(channel, phone), name=name)
            .on_conflict_do_update(
                index_elements=["phone_e164"], set_={"name": func.coalesce(Contact.name, name)}
            )
            .returning(Contact.id, Contact.opted_out, Contact.name,
                       literal_column("(xmax = 0)", Boolean).label("inserted"))
        )
    ).one()
    conversation_id = (
        await session.execute(
            insert(Conversation)
            .values(id=uuid.uuid4(), contact_id=contact.id, channel=channel, account=account,
                    owner=Owner.BOT.value)
            .on_conflict_do_update(constraint="uq_conversation_key", set_={"channel": channel})
            .returning(Conversation.id)
        )
    ).scalar_one()
    # the name given with this enrollment fills {nombre}; else the one we know
    return Target(contact.id, conversation_id, phone, name or contact.name, contact.opted_out,
                  new_contact=bool(contact.inserted))


async def target_by_conversation(session: AsyncSession, conversation_id: uuid.UUID) -> Target:
    """The contact of an existing conversation (NotFound when there is none; a conflict
    when its customer's data was erased)."""
    # key-share locked: an erasure (which locks both for update) finishes first, and then
    # this reads the erased rows instead of enrolling the number it just removed
    row = (
        await session.execute(
            select(Contact.id, Contact.phone_e164, Contact.name, Contact.opted_out,
                   Conversation.erased_at)
            .join(Conversation, Conversation.contact_id == Contact.id)
            .where(Conversation.id == conversation_id)
            .with_for_update(key_share=True)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"conversation {conversation_id} not found")
    if row.erased_at is not None:
        raise SequenceConflict("erased", "the customer's data was erased; this conversation "
                               "cannot be enrolled")
    if row.phone_e164 is None:
        raise SequenceRejected("this contact has no phone number (only a WhatsApp id)")
    return Target(row.id, conversation_id, row.phone_e164, row.name, row.opted_out)


async def enroll(
    session: AsyncSession,
    *,
    sequence: SequenceRow,
    target: Target,
    fields: Mapping[str, str],
    source: str,
    by: uuid.UUID | None,
    now: datetime,
    again: bool = False,
) -> SequenceEnrollment:
    """Write the enrollment, or refuse: opted out, probably blocked, in this sequence now
    (or before, unless ``again``) (``SequenceConflict``), a value the steps need is
    missing (``SequenceRejected``)."""
    steps = await _check(session, sequence, target, fields, again=again)
    last_seq = (
        await session.execute(
            select(func.coalesce(func.max(Message.seq), 0))
            .where(Message.conversation_id == target.conversation_id)
        )
    ).scalar_one()
    enrollment_id = uuid.uuid4()
    inserted = (
        await session.execute(
            insert(SequenceEnrollment)
            .values(
                id=enrollment_id, sequence_id=sequence.id, contact_id=target.contact_id,
                conversation_id=target.conversation_id, phone_e164=target.phone,
                name=target.name, fields=dict(fields), state="active", source=source,
                enrolled_by=by, enrolled_at=now, enrolled_seq=last_seq, next_step=0,
                steps_queued=0, due_at=first_due(steps, now, sequence.timezone),
            )
            .on_conflict_do_nothing(
                index_elements=["sequence_id", "conversation_id"],
                index_where=SequenceEnrollment.state == "active",
            )
            .returning(SequenceEnrollment.id)
        )
    ).scalar_one_or_none()
    if inserted is None:  # enrolled by someone else at the same instant
        await _not_before(session, sequence, target)
    enrollment = await session.get(SequenceEnrollment, enrollment_id)
    assert enrollment is not None
    return enrollment


async def _check(
    session: AsyncSession, sequence: SequenceRow, target: Target, fields: Mapping[str, str],
    *, again: bool,
) -> tuple[Step, ...]:
    if sequence.status != "active":
        raise SequenceConflict("not_active", f"sequence {sequence.id} was deleted")
    if target.opted_out:
        raise SequenceConflict("opted_out", f"{target.phone} opted out of messages")
    if await is_blocked(session, target.conversation_id):
        raise SequenceConflict(
            "probably_blocked",
            f"{target.phone} has probably blocked this number; an agent can clear the mark",
        )
    if not again:
        await _not_before(session, sequence, target)
    steps = steps_of(sequence)
    values = values_for(target.name, target.phone, fields)
    missing = [v for v in used_variables(steps) if not str(values.get(v, "")).strip()]
    if missing:
        raise SequenceRejected(
            f"no value for {', '.join('{' + v + '}' for v in missing)} for {target.phone}: "
            "give it in `fields` (or the contact's name)",
            details=[{"phone": target.phone, "missing": missing}],
        )
    return steps


async def _not_before(session: AsyncSession, sequence: SequenceRow, target: Target) -> None:
    """A contact who already went through the sequence is not enrolled again by accident
    (a retried API call, a list uploaded twice): that would send its steps twice."""
    earlier = (
        await session.execute(
            select(SequenceEnrollment.id, SequenceEnrollment.state).where(
                SequenceEnrollment.sequence_id == sequence.id,
                SequenceEnrollment.conversation_id == target.conversation_id,
            ).order_by(SequenceEnrollment.enrolled_at.desc()).limit(1)
        )
    ).one_or_none()
    if earlier is not None:
        raise SequenceConflict(
            "already_enrolled",
            f"{target.phone} is already in sequence {sequence.name!r} ({earlier.state}); "
            "send again=true to start it over" if earlier.state != "active"
            else f"{target.phone} is already in sequence {sequence.name!r}",
            enrollment_id=str(earlier.id), state=earlier.state,
        )
