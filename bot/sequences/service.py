"""The sequence service: definitions, enrollments (agent, API, contact list), stopping,
the inbox's view of a contact's sequences, the "to do by hand" list and the figures.

The tick that sends the steps is ``bot.sequences.ticker``; automatic enrollment by
intent is ``bot.sequences.intents``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.campaigns.models import ContactList, ContactListEntry
from bot.clock import Clock
from bot.errors import NotFound, SequenceConflict, SequenceRejected
from bot.logs import get_logger
from bot.sequences.analytics import enrollment_counts, step_stats
from bot.sequences.enrolling import (
    Target,
    enroll,
    target_by_conversation,
    target_by_phone,
)
from bot.sequences.models import Sequence as SequenceRow
from bot.sequences.models import SequenceEnrollment, SequenceSend
from bot.sequences.validation import validate_draft
from bot.sequences.values import EnrollmentView, EnrollReport, SequenceDraft, SequenceView
from handoff.access import require_visible
from handoff.auth import Principal
from handoff.conversations import Conversation, Message, display_phone

__all__ = ["SequenceService"]

log = get_logger("atiende.sequences")

# Unsent step messages of enrollments that stop go back out of the outbox. A row being
# sent right now is locked by its sender: this waits, then finds it no longer pending.
_WITHDRAW = text(
    """
    UPDATE messages SET status = 'cancelled', error = :why
    WHERE id IN (SELECT message_id FROM sequence_sends WHERE enrollment_id = ANY(:ids)
                 AND message_id IS NOT NULL)
      AND status = 'pending'
    """
)

_WITHDRAW_SEQUENCE = text(
    """
    UPDATE messages SET status = 'cancelled', error = :why
    WHERE id IN (SELECT message_id FROM sequence_sends WHERE sequence_id = :id
                 AND message_id IS NOT NULL)
      AND status = 'pending'
    """
)


# Steps of an enrollment the channel accepted (withdrawn, refused or unsent ones are not).
_SENT = (
    select(func.count())
    .select_from(SequenceSend)
    .join(Message, Message.id == SequenceSend.message_id)
    .where(SequenceSend.enrollment_id == SequenceEnrollment.id,
           Message.status.in_(("sent", "delivered", "read", "played")))
    .correlate(SequenceEnrollment)
    .scalar_subquery()
)


class DueNow(Protocol):
    """Queues the steps of these enrollments if already due (``SequenceTicker.run_due``)."""

    async def run_due(self, enrollment_ids: Sequence[uuid.UUID]) -> object: ...


class SequenceService:
    """Follow-up sequences for admins, supervisors and agents."""

    def __init__(
        self, *, sessions: async_sessionmaker[AsyncSession], clock: Clock,
        due_now: DueNow | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._due_now = due_now

    # -- definitions ---------------------------------------------------------------
    async def create(self, draft: SequenceDraft, *, by: uuid.UUID | None) -> SequenceView:
        """Validate and store a sequence (422 naming what is wrong; 409 for a taken name)."""
        validate_draft(draft)
        async with self._sessions() as session, session.begin():
            taken = (
                await session.execute(
                    select(SequenceRow.id).where(SequenceRow.name == draft.name,
                                              SequenceRow.status == "active")
                )
            ).scalar_one_or_none()
            if taken is not None:
                raise SequenceConflict("name_taken", f"a sequence named {draft.name!r} exists",
                                       sequence_id=str(taken))
            sequence = SequenceRow(
                id=uuid.uuid4(), name=draft.name, channel=draft.channel, account=draft.account,
                timezone=draft.timezone, steps=[s.to_json() for s in draft.steps],
                on_reply=draft.on_reply, on_human=draft.on_human, on_opt_out=draft.on_opt_out,
                auto_intent=draft.auto_intent, auto_escalated_only=draft.auto_escalated_only,
                status="active", created_by=by,
            )
            session.add(sequence)
        log.info("sequences.created", sequence_id=str(sequence.id), by=str(by),
                 steps=len(draft.steps), auto_intent=draft.auto_intent)
        return await self.get(sequence.id)

    async def get(self, sequence_id: uuid.UUID) -> SequenceView:
        """The sequence with its enrollments per state and per-step figures."""
        async with self._sessions() as session:
            sequence = await session.get(SequenceRow, sequence_id)
            if sequence is None:
                raise NotFound(f"sequence {sequence_id} not found")
            return await _view(session, sequence, analytics=True)

    async def sequences(self, *, include_deleted: bool = False) -> list[SequenceView]:
        query = select(SequenceRow).order_by(SequenceRow.created_at.desc())
        if not include_deleted:
            query = query.where(SequenceRow.status == "active")
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
            return [await _view(session, s, analytics=False) for s in rows]

    async def delete(
        self, sequence_id: uuid.UUID, *, by: uuid.UUID | None, stop_active: bool
    ) -> SequenceView:
        """Retire a sequence. With active enrollments it refuses (409) unless
        ``stop_active``: then they stop (``sequence_deleted``) and their unsent step is
        withdrawn. History and figures are kept."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            sequence = await _locked(session, sequence_id)
            if sequence.status == "deleted":
                raise NotFound(f"sequence {sequence_id} not found")
            active = (
                await session.execute(
                    select(SequenceEnrollment.id).where(
                        SequenceEnrollment.sequence_id == sequence_id,
                        SequenceEnrollment.state == "active",
                    ).with_for_update()
                )
            ).scalars().all()
            if active and not stop_active:
                raise SequenceConflict(
                    "active_enrollments",
                    f"{len(active)} contact(s) are still in this sequence; stop them first "
                    "or delete with stop_active=true",
                    active=len(active),
                )
            await _stop(session, list(active), reason="sequence_deleted", by=by, now=now)
            # a last step still in the outbox (its enrollment completed) goes too
            await session.execute(_WITHDRAW_SEQUENCE, {"id": sequence_id,
                                                       "why": "sequence: sequence_deleted"})
            sequence.status = "deleted"
            sequence.deleted_at = now
            sequence.deleted_by = by
        log.info("sequences.deleted", sequence_id=str(sequence_id), by=str(by),
                 stopped=len(active))
        return await self.get(sequence_id)

    # -- enrollments -----------------------------------------------------------------
    async def enroll_phone(
        self, sequence_id: uuid.UUID, *, phone: str, name: str | None = None,
        fields: Mapping[str, str] | None = None, by: uuid.UUID | None, again: bool = False,
    ) -> EnrollmentView:
        """Enroll a number (normalized E.164) on the sequence's own number; a number never
        seen before becomes a contact (``new_contact``). A contact who was in the sequence
        before is enrolled again only with ``again``."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            sequence = await _active(session, sequence_id)
            target = await target_by_phone(session, phone=phone, name=name,
                                           channel=sequence.channel, account=sequence.account)
            enrollment = await enroll(session, sequence=sequence, target=target,
                                      fields=fields or {}, source="api", by=by, now=now,
                                      again=again)
        return await self._logged_view(enrollment, target, by)

    async def enroll_conversation(
        self, sequence_id: uuid.UUID, conversation_id: uuid.UUID, *, actor: Principal,
        again: bool = False,
    ) -> EnrollmentView:
        """An agent enrolls the customer of a conversation they can see, on its number."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            await _visible(session, actor, conversation_id)
            sequence = await _active(session, sequence_id)
            target = await target_by_conversation(session, conversation_id)
            enrollment = await enroll(session, sequence=sequence, target=target, fields={},
                                      source="agent", by=actor.id, now=now, again=again)
        return await self._logged_view(enrollment, target, actor.id)

    async def enroll_list(
        self, sequence_id: uuid.UUID, list_id: uuid.UUID, *, by: uuid.UUID | None
    ) -> EnrollReport:
        """Enroll every contact of a cartera (with its fields as template values); the
        ones left out come back with the reason."""
        now = self._clock()
        enrolled, skipped = 0, []
        async with self._sessions() as session, session.begin():
            sequence = await _active(session, sequence_id)
            if await session.get(ContactList, list_id) is None:
                raise NotFound(f"contact list {list_id} not found")
            entries = (
                await session.execute(
                    select(ContactListEntry).where(ContactListEntry.list_id == list_id)
                    .order_by(ContactListEntry.row_number)
                )
            ).scalars().all()
            for entry in entries:
                try:
                    async with session.begin_nested():
                        target = await target_by_phone(
                            session, phone=entry.phone_e164, name=entry.name,
                            channel=sequence.channel, account=sequence.account)
                        await enroll(session, sequence=sequence, target=target,
                                     fields=entry.fields, source="list", by=by, now=now)
                    enrolled += 1
                except (SequenceConflict, SequenceRejected) as exc:
                    code = getattr(exc, "code", "missing_value")
                    skipped.append({"row": str(entry.row_number), "phone": entry.phone_e164,
                                    "reason": code, "detail": exc.reason})
        log.info("sequences.enrolled_list", sequence_id=str(sequence_id), list_id=str(list_id),
                 enrolled=enrolled, skipped=len(skipped), by=str(by))
        return EnrollReport(enrolled, skipped)

    async def enrollments(
        self, sequence_id: uuid.UUID, *, state: str | None = None, limit: int = 200,
        offset: int = 0,
    ) -> list[EnrollmentView]:
        async with self._sessions() as session:
            if await session.get(SequenceRow, sequence_id) is None:
                raise NotFound(f"sequence {sequence_id} not found")
        conditions: list[Any] = [SequenceEnrollment.sequence_id == sequence_id]
        if state is not None:
            conditions.append(SequenceEnrollment.state == state)
        return await self._views(conditions, limit=limit, offset=offset)

    async def of_conversation(
        self, conversation_id: uuid.UUID, *, actor: Principal
    ) -> list[EnrollmentView]:
        """A contact's sequences on this number: active ones first, then the last ended."""
        async with self._sessions() as session:
            await _visible(session, actor, conversation_id)
        views = await self._views([SequenceEnrollment.conversation_id == conversation_id],
                                  limit=20)
        return sorted(views, key=lambda v: v.state != "active")

    async def stop(self, enrollment_id: uuid.UUID, *, actor: Principal) -> EnrollmentView:
        """Staff stop one enrollment now; its unsent step is withdrawn from the outbox."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            enrollment = (
                await session.execute(
                    select(SequenceEnrollment).where(SequenceEnrollment.id == enrollment_id)
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if enrollment is None:
                raise NotFound(f"enrollment {enrollment_id} not found")
            await _visible(session, actor, enrollment.conversation_id)
            if enrollment.state != "active":
                raise SequenceConflict("not_active", f"the enrollment is {enrollment.state}")
            await _stop(session, [enrollment_id], reason="stopped_by_staff", by=actor.id,
                        now=now)
        log.info("sequences.stopped", enrollment_id=str(enrollment_id), by=str(actor.id))
        return (await self._views([SequenceEnrollment.id == enrollment_id]))[0]

    async def _logged_view(
        self, enrollment: SequenceEnrollment, target: Target, by: uuid.UUID | None
    ) -> EnrollmentView:
        log.info("sequences.enrolled", enrollment_id=str(enrollment.id),
                 sequence_id=str(enrollment.sequence_id), source=enrollment.source,
                 conversation_id=str(enrollment.conversation_id), by=str(by))
        if self._due_now is not None and enrollment.due_at is not None \
                and enrollment.due_at <= self._clock():
            await self._due_now.run_due([enrollment.id])
        view = (await self._views([SequenceEnrollment.id == enrollment.id]))[0]
        return _with_new(view, target.new_contact)

    async def _views(
        self, conditions: list[Any], *, limit: int = 200, offset: int = 0
    ) -> list[EnrollmentView]:
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(SequenceEnrollment, SequenceRow.name, SequenceRow.steps,
                           _SENT.label("sent"))
                    .join(SequenceRow, SequenceRow.id == SequenceEnrollment.sequence_id)
                    .where(*conditions)
                    .order_by(SequenceEnrollment.enrolled_at.desc(), SequenceEnrollment.id)
                    .limit(limit).offset(offset)
                )
            ).all()
        return [_enrollment_view(e, name, len(steps), sent) for e, name, steps, sent in rows]


async def _active(session: AsyncSession, sequence_id: uuid.UUID) -> SequenceRow:
    sequence = await session.get(SequenceRow, sequence_id)
    if sequence is None or sequence.status != "active":
        raise NotFound(f"sequence {sequence_id} not found")
    return sequence


async def _locked(session: AsyncSession, sequence_id: uuid.UUID) -> SequenceRow:
    sequence = (
        await session.execute(select(SequenceRow).where(SequenceRow.id == sequence_id)
                              .with_for_update())
    ).scalar_one_or_none()
    if sequence is None:
        raise NotFound(f"sequence {sequence_id} not found")
    return sequence


async def _visible(session: AsyncSession, actor: Principal, conversation_id: uuid.UUID) -> None:
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} not found")
    await require_visible(session, actor, conversation)


async def _stop(
    session: AsyncSession, ids: list[uuid.UUID], *, reason: str, by: uuid.UUID | None,
    now: Any,
) -> None:
    if not ids:
        return
    await session.execute(
        update(SequenceEnrollment)
        .where(SequenceEnrollment.id.in_(ids), SequenceEnrollment.state == "active")
        .values(state="stopped", stop_reason=reason, stopped_by=by, finished_at=now,
                due_at=None, paused_reason=None)
    )
    await session.execute(_WITHDRAW, {"ids": ids, "why": f"sequence: {reason}"})


async def _view(session: AsyncSession, sequence: SequenceRow, *, analytics: bool) -> SequenceView:
    return SequenceView(
        id=sequence.id, name=sequence.name, channel=sequence.channel, account=sequence.account,
        timezone=sequence.timezone, steps=list(sequence.steps), on_reply=sequence.on_reply,
        on_human=sequence.on_human, on_opt_out=sequence.on_opt_out,
        stop_on_reply=sequence.on_reply == "stop", auto_intent=sequence.auto_intent,
        auto_escalated_only=sequence.auto_escalated_only, status=sequence.status,
        created_by=sequence.created_by, created_at=sequence.created_at,
        enrollments=await enrollment_counts(session, sequence.id),
        analytics=await step_stats(session, sequence.id, len(sequence.steps))
        if analytics else [],
    )


def _enrollment_view(
    e: SequenceEnrollment, name: str, total: int, sent: int
) -> EnrollmentView:
    return EnrollmentView(
        id=e.id, sequence_id=e.sequence_id, sequence_name=name, phone=display_phone(e.phone_e164),
        name=e.name, conversation_id=e.conversation_id, state=e.state,
        steps_sent=sent, next_step=e.next_step, total_steps=total,
        stop_reason=e.stop_reason, paused_reason=e.paused_reason, source=e.source,
        enrolled_at=e.enrolled_at, due_at=e.due_at, finished_at=e.finished_at,
    )


def _with_new(view: EnrollmentView, new_contact: bool) -> EnrollmentView:
    return dataclasses.replace(view, new_contact=new_contact)
