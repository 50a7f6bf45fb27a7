"""The one service that moves conversations between the bot, the queue and the agents.

Every ownership change goes through here, under a row lock on the conversation and
through ``next_owner`` (``handoff.steps``); the pipeline's own commit takes the same
lock, so a claim that lands while the bot is thinking silences the bot. Effects leave
as rows (outbox messages, tickets) in the same transaction; notifications and sending
happen after the commit.

``HandoffService`` is the façade the bot and the API hold; each job lives in its own
module: ``actions`` (what agents do), ``hooks`` (what the pipeline calls inside its
transaction), ``csat``, ``timers``, ``routing``, ``notices``, ``access`` and ``steps``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.access import can_see, visible_to_agent
from handoff.actions import AgentActions, Outcome
from handoff.auth import Principal
from handoff.config import HandoffConfig
from handoff.csat import CsatAnswers, close_csat_sql
from handoff.hooks import PipelineHooks
from handoff.hours import LiveHours
from handoff.notices import CustomerNotices
from handoff.ownership import Owner
from handoff.ports import Clock, EventPublisher, MemoryReset, OutboxFlusher
from handoff.routing import Routing
from handoff.steps import AfterCommit, InboxEvents, Steps
from handoff.timers import IdleTimeout


class HandoffService:
    """Claims, replies, transfers, releases, resolves, timeouts, assignment and notices.

    Wires the parts together and delegates to them; it holds no logic of its own.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        config: HandoffConfig,
        publisher: EventPublisher,
        outbox: OutboxFlusher,
        memory: MemoryReset,
        clock: Clock,
        hours: LiveHours | None = None,
    ) -> None:
        self.config = config
        self._sessions = sessions
        self.hours = hours or LiveHours(config.hours, config.timezone, config.holidays)
        steps = Steps(clock=clock, hours=self.hours)
        self._events = InboxEvents(publisher)
        self._routing = Routing(sessions, config=config, clock=clock, events=self._events)
        self._notices = CustomerNotices(config=config, hours=self.hours)
        after = AfterCommit(
            events=self._events, outbox=outbox, memory=memory, sweep=self._routing.sweep
        )
        self._actions = AgentActions(
            sessions, config=config, clock=clock, steps=steps, routing=self._routing,
            after=after, events=self._events,
        )
        self._hooks = PipelineHooks(
            clock=clock, hours=self.hours, steps=steps, routing=self._routing,
            notices=self._notices,
        )
        self._csat = CsatAnswers(sessions, config=config, clock=clock)
        self._idle = IdleTimeout(sessions, config=config, clock=clock, steps=steps, after=after)

    # ----------------------------------------------------------------- agent actions

    async def may_see(self, actor: Principal, conversation_id: uuid.UUID) -> bool:
        """Whether ``actor`` may see the conversation (``handoff.access``): the inbox stream
        sends an agent only events of conversations this allows."""
        async with self._sessions() as session:
            return await can_see(session, actor, conversation_id)

    async def claim(self, actor: Principal, conversation_id: uuid.UUID) -> Outcome:
        return await self._actions.claim(actor, conversation_id)

    async def reply(
        self,
        actor: Principal,
        conversation_id: uuid.UUID,
        body: str | None,
        *,
        kind: str = "text",
        media: dict[str, Any] | None = None,
    ) -> Outcome:
        return await self._actions.reply(actor, conversation_id, body, kind=kind, media=media)

    async def start(
        self,
        actor: Principal,
        *,
        phone: str,
        body: str,
        channel: str,
        account: str,
        name: str | None = None,
    ) -> Outcome:
        return await self._actions.start(
            actor, phone=phone, body=body, channel=channel, account=account, name=name
        )

    async def release(self, actor: Principal, conversation_id: uuid.UUID) -> Outcome:
        return await self._actions.release(actor, conversation_id)

    async def transfer(
        self,
        actor: Principal,
        conversation_id: uuid.UUID,
        *,
        agent_id: uuid.UUID | None = None,
        team_id: uuid.UUID | None = None,
    ) -> Outcome:
        return await self._actions.transfer(
            actor, conversation_id, agent_id=agent_id, team_id=team_id
        )

    async def reassign(
        self, actor: Principal, conversation_id: uuid.UUID, agent_id: uuid.UUID
    ) -> Outcome:
        return await self._actions.reassign(actor, conversation_id, agent_id)

    async def resolve(self, actor: Principal, conversation_id: uuid.UUID) -> Outcome:
        return await self._actions.resolve(actor, conversation_id)

    async def add_note(self, actor: Principal, conversation_id: uuid.UUID, body: str) -> uuid.UUID:
        return await self._actions.add_note(actor, conversation_id, body)

    async def set_labels(
        self, actor: Principal, conversation_id: uuid.UUID, labels: Sequence[str]
    ) -> list[str]:
        return await self._actions.set_labels(actor, conversation_id, labels)

    async def set_presence(
        self, actor: Principal, *, online: bool, capacity: int | None = None
    ) -> None:
        await self._actions.set_presence(actor, online=online, capacity=capacity)

    # ----------------------------------------------------------------- hooks for the bot

    async def escalate_in(
        self,
        session: AsyncSession,
        conversation_id: uuid.UUID,
        *,
        reason: str | None,
        intent: str | None,
        language: str,
        text_hint: str = "",
    ) -> tuple[tuple[str, ...], Owner]:
        return await self._hooks.escalate_in(
            session, conversation_id, reason=reason, intent=intent, language=language,
            text_hint=text_hint,
        )

    async def takeover_in(self, session: AsyncSession, conversation_id: uuid.UUID) -> None:
        await self._hooks.takeover_in(session, conversation_id)

    async def silenced_in(
        self, session: AsyncSession, conversation_id: uuid.UUID, owner: Owner
    ) -> tuple[str, ...]:
        return await self._hooks.silenced_in(session, conversation_id, owner)

    async def csat_expected(
        self, conversation_id: uuid.UUID, body: str | None
    ) -> tuple[int, str] | None:
        return await self._csat.expected(conversation_id, body)

    async def csat_in(
        self, session: AsyncSession, conversation_id: uuid.UUID, score: int | None
    ) -> bool:
        return await self._csat.answered_in(session, conversation_id, score)

    def csat_thanks(self, language: str) -> str:
        return self._csat.thanks(language)

    # ----------------------------------------------------------------- periodic work

    async def timeout_idle(self) -> int:
        return await self._idle.run()

    async def sweep(self) -> int:
        return await self._routing.sweep()

    # ----------------------------------------------------------------- notices

    def describe_hours(self, language: str) -> str:
        return self._notices.describe_hours(language)

    async def notify(self, conversation_id: uuid.UUID, kind: str = "message") -> None:
        """Tell every inbox that the conversation changed (e.g. the phone's owner wrote)."""
        await self._events.conversation(conversation_id, kind)


__all__ = ["HandoffService", "Outcome", "close_csat_sql", "visible_to_agent"]
