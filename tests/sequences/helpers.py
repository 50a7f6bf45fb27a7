"""Shared helpers for sequence tests: a sequence from a few steps, what a number got."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from bot.channels.simulator import SIMULATOR
from bot.sequences import SequenceDraft, Step, StepTemplate
from bot.sequences.models import SequenceEnrollment, SequenceSend
from bot.wiring.runtime import Runtime
from handoff.conversations import Contact, Conversation, Message, contact_key


def steps(*delays: int, template: StepTemplate | None = None) -> tuple[Step, ...]:
    return tuple(Step(delay_minutes=d, text=f"Paso {i + 1}, {{nombre}}", template=template)
                 for i, d in enumerate(delays))


async def make_sequence(rt: Runtime, *delays: int, **options: object) -> uuid.UUID:
    draft = SequenceDraft(name=f"seq-{uuid.uuid4().hex[:6]}", steps=steps(*delays),
                          **options)  # type: ignore[arg-type]
    return (await rt.sequences.create(draft, by=None)).id


async def sent_to(rt: Runtime, phone: str) -> list[tuple[str | None, str]]:
    """(text, status) of every sequence message to ``phone``, in order."""
    async with rt.sessions() as s:
        rows = (await s.execute(
            select(Message.text, Message.status)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(Contact.phone_e164.in_([phone, contact_key(SIMULATOR, phone)]),
                   Message.author == "sequence")
            .order_by(Message.seq)
        )).all()
    return [(r.text, r.status) for r in rows]


async def enrollment(rt: Runtime, enrollment_id: uuid.UUID) -> SequenceEnrollment:
    async with rt.sessions() as s:
        row = await s.get(SequenceEnrollment, enrollment_id)
    assert row is not None
    return row


async def sends(rt: Runtime, enrollment_id: uuid.UUID) -> list[SequenceSend]:
    async with rt.sessions() as s:
        return list((await s.execute(
            select(SequenceSend).where(SequenceSend.enrollment_id == enrollment_id)
            .order_by(SequenceSend.step))).scalars())
