"""What the bot's pipeline calls inside its own locked transaction: the bot hands over,
the phone's owner takes over, a customer writes while waiting in the queue.

These take the pipeline's session and never commit: the ownership change lands with
the pipeline's commit, or not at all.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from handoff.hours import BusinessHours, LiveHours
from handoff.notices import CustomerNotices
from handoff.ownership import Owner, OwnerEvent
from handoff.ports import Clock
from handoff.routing import Routing
from handoff.steps import Steps


class PipelineHooks:
    """Escalation, phone takeover and the out-of-office reply, in the caller's transaction."""

    def __init__(
        self,
        *,
        clock: Clock,
        hours: BusinessHours | LiveHours,
        steps: Steps,
        routing: Routing,
        notices: CustomerNotices,
    ) -> None:
        self._clock = clock
        self._hours = hours
        self._steps = steps
        self._routing = routing
        self._notices = notices

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
        """The bot hands over (inside the pipeline's locked transaction).

        Returns the customer notice that replaces the bot's own handoff line (the
        expected wait in business hours, the out-of-office reply outside them) and
        the new owner.
        """
        conv = await self._steps.lock(session, conversation_id)
        self._steps.move(conv, OwnerEvent.ESCALATE, reason=reason or "escalated")
        ticket = await self._steps.ticket(
            session, conv, reason=reason, intent=intent, language=language
        )
        if ticket.team_id is None:
            ticket.team_id = await self._routing.team_for(session, reason, intent, text_hint)
        agent = await self._routing.assign(session, conv, ticket)
        now = self._clock()
        if not self._hours.is_open(now):
            ticket.out_of_office_sent_at = now
            return (self._notices.out_of_office(language, now),), Owner(conv.owner)
        notice = await self._notices.queued(session, ticket, agent, language)
        return (notice,), Owner(conv.owner)

    async def takeover_in(self, session: AsyncSession, conversation_id: uuid.UUID) -> None:
        """A message typed on the business phone: a human has the conversation now."""
        conv = await self._steps.lock(session, conversation_id)
        self._steps.move(conv, OwnerEvent.TAKEOVER, reason="owner_phone")
        ticket = await self._steps.ticket(session, conv, reason="owner_phone")
        self._steps.first_response(ticket, self._clock())

    async def silenced_in(
        self, session: AsyncSession, conversation_id: uuid.UUID, owner: Owner
    ) -> tuple[str, ...]:
        """A customer wrote while the conversation waits in the queue: the out-of-office
        reply, once per handoff, outside business hours; nothing otherwise (and never once
        a person has it: whoever answers at night is not "closed")."""
        now = self._clock()
        if self._hours.is_open(now) or owner is not Owner.QUEUED:
            return ()
        ticket = await self._steps.open_ticket(session, conversation_id)
        if ticket is None or ticket.out_of_office_sent_at is not None:
            return ()
        ticket.out_of_office_sent_at = now
        return (self._notices.out_of_office(ticket.language, now),)
