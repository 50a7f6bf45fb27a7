"""The "to do by hand" list: steps the tick could not send (the Cloud API's 24-hour window
was closed and the step has no template, a value was missing…), for an agent to do."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.errors import NotFound, SequenceConflict
from bot.logs import get_logger
from bot.sequences.models import Sequence, SequenceSend
from bot.sequences.values import TaskView
from handoff.access import require_visible, visible_to_agent
from handoff.auth import Principal
from handoff.conversations import Contact, Conversation
from handoff.roles import Role

__all__ = ["HandList"]

log = get_logger("atiende.sequences")


class HandList:
    """Steps to do by hand: listed for the staff who can see their conversations."""

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def tasks(
        self, actor: Principal, *, open_only: bool = True,
        conversation_id: uuid.UUID | None = None, limit: int = 200,
    ) -> list[TaskView]:
        """Open tasks (or all), oldest first; agents see their teams' conversations only."""
        conditions: list[Any] = [SequenceSend.kind == "manual"]
        if open_only:
            conditions.append(SequenceSend.done_at.is_(None))
        if conversation_id is not None:
            conditions.append(SequenceSend.conversation_id == conversation_id)
        if actor.role is Role.AGENT:
            conditions.append(visible_to_agent(actor.id))
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(SequenceSend, Sequence.name, Contact.phone_e164, Contact.name)
                    .join(Sequence, Sequence.id == SequenceSend.sequence_id)
                    .join(Conversation, Conversation.id == SequenceSend.conversation_id)
                    .join(Contact, Contact.id == Conversation.contact_id)
                    .where(*conditions)
                    .order_by(SequenceSend.created_at, SequenceSend.id)
                    .limit(limit)
                )
            ).all()
        return [_task(s, seq_name, phone, name) for s, seq_name, phone, name in rows]

    async def done(self, task_id: uuid.UUID, *, actor: Principal) -> TaskView:
        """An agent did the step by hand (409 when someone already did)."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            task = (
                await session.execute(
                    select(SequenceSend).where(SequenceSend.id == task_id,
                                               SequenceSend.kind == "manual")
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if task is None:
                raise NotFound(f"task {task_id} not found")
            conversation = await session.get(Conversation, task.conversation_id)
            assert conversation is not None
            await require_visible(session, actor, conversation)
            if task.done_at is not None:
                raise SequenceConflict("already_done", "this task was already done")
            task.done_at = now
            task.done_by = actor.id
        log.info("sequences.task_done", task_id=str(task_id), by=str(actor.id))
        found = await self.tasks(actor, open_only=False, conversation_id=task.conversation_id)
        return next(t for t in found if t.id == task_id)


def _task(send: SequenceSend, sequence_name: str, phone: str | None,
          name: str | None) -> TaskView:
    return TaskView(
        id=send.id, conversation_id=send.conversation_id, contact_phone=phone or "",
        contact_name=name, sequence_id=send.sequence_id, sequence_name=sequence_name,
        step=send.step + 1, text=send.text, reason=send.reason, created_at=send.created_at,
        done_at=send.done_at, done_by=send.done_by,
    )
