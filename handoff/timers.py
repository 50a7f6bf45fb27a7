"""Periodic work: idle human conversations go back to the bot.

(The backlog sweep, which also runs after releases, resolutions and agents coming
online, is assignment: ``handoff.routing``.)
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.config import HandoffConfig
from handoff.conversations import Conversation
from handoff.ownership import Owner, OwnerEvent
from handoff.ports import Clock
from handoff.steps import After, AfterCommit, Steps
from handoff.texts import text as say


class IdleTimeout:
    """Hands idle human conversations back to the bot, closing their tickets."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        config: HandoffConfig,
        clock: Clock,
        steps: Steps,
        after: AfterCommit,
    ) -> None:
        self._sessions = sessions
        self._config = config
        self._clock = clock
        self._steps = steps
        self._after = after

    async def run(self) -> int:
        """Idle human conversations go back to the bot with a notice; returns how many."""
        cutoff = self._clock() - timedelta(minutes=self._config.idle_timeout_minutes)
        last = func.greatest(
            func.coalesce(Conversation.last_message_at, Conversation.owner_changed_at),
            func.coalesce(Conversation.owner_changed_at, Conversation.last_message_at),
        )
        async with self._sessions() as session:
            ids = (
                await session.execute(
                    select(Conversation.id).where(Conversation.owner == Owner.HUMAN.value,
                                                  Conversation.erased_at.is_(None),
                                                  last < cutoff)
                )
            ).scalars().all()
        done = 0
        for conversation_id in ids:
            after = After(sweep=True)
            async with self._sessions() as session, session.begin():
                conv = await self._steps.lock(session, conversation_id)
                # checked again under the lock: an agent may have written since the scan
                latest = max(filter(None, [conv.last_message_at, conv.owner_changed_at]),
                             default=None)
                if conv.owner != Owner.HUMAN.value or latest is None or latest >= cutoff:
                    continue
                self._steps.move(conv, OwnerEvent.TIMEOUT, reason="idle_timeout")
                ticket = await self._steps.ticket(session, conv)
                self._steps.close_ticket(ticket, "timeout", None)
                self._steps.enqueue(session, conv, say("idle_timeout", ticket.language),
                                    author="system")
                conv.assigned_agent_id = None
                await self._steps.fresh_context(session, conv)
                after.forget.add(conv.id)
                after.send.add(conv.id)
                after.conversations.add(conv.id)
            await self._after.run(after)
            done += 1
        return done
