"""The campaign scheduler: releases campaign messages into the outbox, paced.

The scheduler only decides *when* a campaign message becomes an outbound row; the row is
sent by the same outbox (and per-number pacing) every bot and agent reply uses. Each row
is created in one transaction with its recipient's ``pending → queued`` move, under the
campaign's row lock, so a crash at any point resumes without sending anyone twice.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.blocking import is_blocked
from bot.campaigns.models import Campaign, CampaignRecipient
from bot.campaigns.schedule import Pacing, Window
from bot.campaigns.templating import TemplateError, render, values_for
from bot.campaigns.values import CLOUD_CHANNEL, campaign_event
from bot.clock import Clock
from bot.logs import get_logger
from bot.messages import Author, MessageKind
from handoff.conversations import Contact, Conversation, Message, contact_key
from handoff.ownership import Owner

__all__ = ["CampaignScheduler", "PendingSender", "Step"]

log = get_logger("atiende.campaigns")

SERVICE_WINDOW = timedelta(hours=24)
HOUR = timedelta(hours=1)


class PendingSender(Protocol):
    """The outbox (``bot.conversation.outbox``): sends a conversation's pending rows."""

    async def send_pending(self, conversation_id: uuid.UUID | None = None) -> int: ...


@dataclass(frozen=True, slots=True)
class Step:
    """One scheduler step: the conversation it wrote to (if any), when to come back."""

    conversation_id: uuid.UUID | None
    next_at: datetime | None


class CampaignScheduler:
    """Releases campaign messages into the outbox inside the window and under the caps."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        outbox: PendingSender,
        clock: Clock,
        rng: random.Random | None = None,
        short_wait_seconds: float = 5.0,
        run_budget_seconds: float = 50.0,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self._sessions = sessions
        self._outbox = outbox
        self._clock = clock
        self._rng = rng or random.Random()
        self._short_wait = short_wait_seconds
        self._budget = run_budget_seconds
        self._sleep = sleep or asyncio.sleep

    async def run(self, campaign_id: uuid.UUID) -> float | None:
        """Release what is due, waiting short gaps in-process; return the seconds until
        the next tick should run, or None when the campaign needs no more ticks."""
        spent = 0.0
        while True:
            step = await self.step(campaign_id)
            if step.conversation_id is not None:
                await self._outbox.send_pending(step.conversation_id)
            if step.next_at is None:
                return None
            delay = (step.next_at - self._clock()).total_seconds()
            if delay <= 0:
                continue
            if delay > self._short_wait or spent + delay > self._budget:
                return delay
            await self._sleep(delay)
            spent += delay

    async def step(self, campaign_id: uuid.UUID) -> Step:
        """Release at most one message if the window, the caps and the rhythm allow it."""
        async with self._sessions() as session, session.begin():
            campaign = (
                await session.execute(
                    select(Campaign).where(Campaign.id == campaign_id).with_for_update()
                )
            ).scalar_one_or_none()
            if campaign is None or campaign.status != "running":
                return Step(None, None)
            now = self._clock()
            if campaign.next_send_at is not None and campaign.next_send_at > now:
                return Step(None, campaign.next_send_at)
            blocked = await self._blocked_until(session, campaign, now)
            if blocked is not None:
                campaign.next_send_at = blocked
                return Step(None, blocked)
            while True:
                recipient = (
                    await session.execute(
                        select(CampaignRecipient)
                        .where(CampaignRecipient.campaign_id == campaign_id,
                               CampaignRecipient.status == "pending")
                        .order_by(CampaignRecipient.position)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                ).scalar_one_or_none()
                if recipient is None:
                    return await self._finish_if_done(session, campaign, now)
                conversation_id = await self._release(session, campaign, recipient, now)
                if conversation_id is not None:
                    break
            pacing = Pacing.from_json(campaign.pacing)
            if campaign.burst_size <= 0:
                campaign.burst_size = pacing.burst_size(self._rng)
            campaign.burst_count += 1
            if campaign.burst_count >= campaign.burst_size:
                campaign.burst_count = 0
                campaign.burst_size = pacing.burst_size(self._rng)
                campaign.next_send_at = now + pacing.pause(self._rng)
            else:
                campaign.next_send_at = now + pacing.gap(self._rng)
            return Step(conversation_id, campaign.next_send_at)

    async def _blocked_until(
        self, session: AsyncSession, campaign: Campaign, now: datetime
    ) -> datetime | None:
        """The moment the window or a per-number cap lets the next message go, if not now."""
        window = Window.from_json(campaign.schedule)
        pacing = Pacing.from_json(campaign.pacing)
        if not window.is_open(now):
            return window.next_open(now)
        number = (
            CampaignRecipient.channel == campaign.channel,
            CampaignRecipient.account == campaign.account,
            CampaignRecipient.status == "queued",
        )
        day_count = (
            await session.execute(
                select(func.count()).where(*number,
                                           CampaignRecipient.queued_at >= window.day_start(now))
            )
        ).scalar_one()
        if day_count >= pacing.per_day:
            return window.next_day_open(now)
        hour = [
            at
            for at in (
                await session.execute(
                    select(CampaignRecipient.queued_at)
                .where(*number, CampaignRecipient.queued_at > now - HOUR)
                .order_by(CampaignRecipient.queued_at.desc())
                    .limit(pacing.per_hour)
                )
            ).scalars()
            if at is not None
        ]
        if len(hour) >= pacing.per_hour:
            # the oldest of the last ``per_hour`` releases leaves the hour first
            return window.next_open(min(hour) + HOUR)
        return None

    async def _release(
        self, session: AsyncSession, campaign: Campaign, recipient: CampaignRecipient,
        now: datetime,
    ) -> uuid.UUID | None:
        """Write one recipient's outbox row; None when the recipient is skipped instead."""
        contact = await _upsert_contact(session, recipient)
        recipient.contact_id = contact.id
        if contact.opted_out:
            _skip(recipient, "opted_out")
            return None
        conversation = await _upsert_conversation(session, campaign, contact.id)
        conversation_id: uuid.UUID = conversation.id
        recipient.conversation_id = conversation_id
        if conversation.owner in (Owner.HUMAN.value, Owner.QUEUED.value):
            _skip(recipient, "talking_to_agent")
            return None
        if await is_blocked(session, conversation_id):
            # the customer probably blocked this number (bot.blocking): sending costs
            # budget and makes the number look like spam
            _skip(recipient, "probably_blocked")
            return None
        variant = recipient.position % len(campaign.variants)
        values = values_for(recipient.name, recipient.phone_e164, recipient.fields)
        try:
            body = render(campaign.variants[variant], values)
            raw = self._template(campaign, values, conversation.last_inbound_at, now)
        except TemplateError as exc:
            _skip(recipient, f"template: {exc}")
            return None
        await _enqueue(session, campaign, recipient, conversation_id, variant, body, raw, now)
        return conversation_id

    @staticmethod
    def _template(
        campaign: Campaign, values: dict[str, str], last_inbound_at: datetime | None,
        now: datetime,
    ) -> dict[str, Any] | None:
        """Cloud API numbers outside the 24-hour window send the approved template."""
        if campaign.channel != CLOUD_CHANNEL or not campaign.template_name:
            return None
        if last_inbound_at is not None and now - last_inbound_at < SERVICE_WINDOW:
            return None
        parameters = []
        for name in campaign.template_params:
            value = values.get(name, "")
            if not value.strip():
                raise TemplateError(f"no value for template parameter {{{name}}}")
            parameters.append({"type": "text", "text": value})
        template: dict[str, Any] = {
            "name": campaign.template_name, "language": campaign.template_language or "es_MX",
        }
        if parameters:
            template["components"] = [{"type": "body", "parameters": parameters}]
        return {"template": template}

    async def _finish_if_done(
        self, session: AsyncSession, campaign: Campaign, now: datetime
    ) -> Step:
        campaign.status = "completed"
        campaign.finished_at = now
        campaign.next_send_at = None
        campaign.events = [*campaign.events, campaign_event("completed", None, now)]
        log.info("campaigns.completed", campaign_id=str(campaign.id))
        return Step(None, None)

    async def running_without_tick(self) -> Sequence[tuple[uuid.UUID, float]]:
        """Running campaigns with no queued or running tick job (e.g. a job that gave up),
        with the seconds until they are due."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Campaign.id, Campaign.next_send_at).where(
                        Campaign.status == "running",
                        text(
                            "NOT EXISTS (SELECT 1 FROM procrastinate_jobs j "
                            "WHERE j.lock = 'campaign:' || campaigns.id::text "
                            "AND j.status IN ('todo', 'doing'))"
                        ),
                    )
                )
            ).all()
        now = self._clock()
        return [
            (r.id, max(0.0, (r.next_send_at - now).total_seconds()) if r.next_send_at else 0.0)
            for r in rows
        ]


def _skip(recipient: CampaignRecipient, reason: str) -> None:
    recipient.status = "skipped"
    recipient.reason = reason
    log.info("campaigns.skipped", recipient_id=str(recipient.id), reason=reason)


async def _upsert_contact(
    session: AsyncSession, recipient: CampaignRecipient
) -> Row[uuid.UUID, bool]:
    """The recipient's contact (created if new): its id and whether it opted out."""
    # INSERT … ON CONFLICT DO UPDATE locks the contact row until commit, so an
    # opt-out committed meanwhile waits and then (trigger) cancels this row.
    return (
        await session.execute(
            insert(Contact)
            # a simulator campaign writes to the simulator's own contact of that number
            .values(id=uuid.uuid4(), phone_e164=contact_key(recipient.channel,
                                                            recipient.phone_e164),
                    name=recipient.name)
            .on_conflict_do_update(
                index_elements=["phone_e164"],
                set_={"name": func.coalesce(Contact.name, recipient.name)},
            )
            .returning(Contact.id, Contact.opted_out)
        )
    ).one()


async def _upsert_conversation(
    session: AsyncSession, campaign: Campaign, contact_id: uuid.UUID
) -> Row[uuid.UUID, str, datetime | None]:
    """The contact's conversation on the campaign's number (created if new): its id,
    owner and last inbound time."""
    return (
        await session.execute(
            insert(Conversation)
            .values(id=uuid.uuid4(), contact_id=contact_id, channel=campaign.channel,
                    account=campaign.account, owner=Owner.BOT.value)
            .on_conflict_do_update(
                constraint="uq_conversation_key", set_={"channel": campaign.channel}
            )
            .returning(Conversation.id, Conversation.owner, Conversation.last_inbound_at)
        )
    ).one()


async def _enqueue(
    session: AsyncSession, campaign: Campaign, recipient: CampaignRecipient,
    conversation_id: uuid.UUID, variant: int, body: str, raw: dict[str, Any] | None,
    now: datetime,
) -> None:
    """Write the outbox row and move the recipient ``pending → queued`` with it."""
    message_id = uuid.uuid4()
    await session.execute(
        insert(Message).values(
            id=message_id, conversation_id=conversation_id, direction="out",
            author=Author.CAMPAIGN.value, kind=MessageKind.TEXT.value,
            channel=campaign.channel, text=body, status="pending", raw=raw,
        )
    )
    recipient.status = "queued"
    recipient.variant = variant
    recipient.message_id = message_id
    recipient.queued_at = now
    await session.flush()
    log.info(
        "campaigns.released", campaign_id=str(campaign.id), recipient_id=str(recipient.id),
        message_id=str(message_id), variant=variant,
    )
