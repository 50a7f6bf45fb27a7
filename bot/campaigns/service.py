"""Campaign services: contact lists, the campaign lifecycle, progress, and the scheduler.

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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.campaigns.csvlist import CsvListError, parse_contacts_csv
from bot.campaigns.models import Campaign, CampaignRecipient, ContactList, ContactListEntry
from bot.campaigns.schedule import Pacing, Window
from bot.campaigns.templating import TemplateError, render, validate_variants, values_for
from bot.channels.simulator import SIMULATOR, SIMULATOR_ACCOUNT
from bot.clock import Clock
from bot.errors import CampaignRejected, CampaignStateError, NotFound
from bot.logs import get_logger
from bot.messages import Author, MessageKind
from handoff.conversations import Contact, Conversation, Message
from handoff.ownership import Owner
from handoff.tables import Team, TeamMember, User

__all__ = [
    "CLOUD_CHANNEL",
    "CampaignDraft",
    "CampaignScheduler",
    "CampaignService",
    "CampaignView",
    "ListView",
    "Progress",
    "TickScheduler",
]

log = get_logger("atiende.campaigns")

CLOUD_CHANNEL = "whatsapp_cloud"  # bot.channels.cloud_api.CLOUD_CHANNEL
SERVICE_WINDOW = timedelta(hours=24)
HOUR = timedelta(hours=1)


class TickScheduler(Protocol):
    """Durable campaign ticks (``bot.infra.jobs.JobQueue``)."""

    async def defer_campaign(self, campaign_id: uuid.UUID, *, delay_seconds: float = 0) -> bool:
        ...


class PendingSender(Protocol):
    async def send_pending(self, conversation_id: uuid.UUID | None = None) -> int: ...


@dataclass(frozen=True, slots=True)
class ListView:
    id: uuid.UUID
    name: str
    fields: list[str]
    total_rows: int
    accepted: int
    rejected: list[dict[str, Any]]
    assigned_agent_id: uuid.UUID | None
    assigned_team_id: uuid.UUID | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CampaignDraft:
    """What an admin asks for; validated by ``CampaignService.create``."""

    name: str
    list_id: uuid.UUID
    variants: list[str]
    channel: str = SIMULATOR
    account: str = SIMULATOR_ACCOUNT
    window: Window = field(default_factory=Window)
    pacing: Pacing = field(default_factory=Pacing)
    template_name: str | None = None
    template_language: str = "es_MX"
    template_params: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Progress:
    """Counts are cumulative: ``delivered`` ⊆ ``sent``, ``read`` ⊆ ``delivered``."""

    total: int = 0
    waiting: int = 0  # not yet released by the scheduler
    queued: int = 0  # released, in the outbox, not yet accepted by the channel
    sent: int = 0
    delivered: int = 0
    read: int = 0
    replied: int = 0
    failed: int = 0
    skipped: int = 0  # opted out, or talking to an agent, at release time
    cancelled: int = 0


@dataclass(frozen=True, slots=True)
class CampaignView:
    id: uuid.UUID
    name: str
    list_id: uuid.UUID
    channel: str
    account: str
    status: str
    variants: list[str]
    window: dict[str, Any]
    pacing: dict[str, Any]
    template_name: str | None
    created_by: uuid.UUID | None
    launched_by: uuid.UUID | None
    launched_at: datetime | None
    finished_at: datetime | None
    next_send_at: datetime | None
    events: list[dict[str, Any]]
    progress: Progress


@dataclass(frozen=True, slots=True)
class RecipientView:
    id: uuid.UUID
    position: int
    phone_e164: str
    name: str | None
    status: str
    reason: str | None
    variant: int | None
    message_status: str | None
    queued_at: datetime | None
    conversation_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class Step:
    """One scheduler step: the conversation it wrote to (if any), when to come back."""

    conversation_id: uuid.UUID | None
    next_at: datetime | None


_PROGRESS_SQL = text(
    """
    SELECT
      count(*) AS total,
      count(*) FILTER (WHERE r.status = 'pending') AS waiting,
      count(*) FILTER (WHERE r.status = 'queued' AND m.status IN ('pending','sending')) AS queued,
      count(*) FILTER (WHERE m.status IN ('sent','delivered','read')) AS sent,
      count(*) FILTER (WHERE m.status IN ('delivered','read')) AS delivered,
      count(*) FILTER (WHERE m.status = 'read') AS read,
      count(*) FILTER (WHERE r.status = 'queued' AND m.status = 'failed') AS failed,
      count(*) FILTER (WHERE r.status = 'skipped') AS skipped,
      count(*) FILTER (WHERE r.status = 'cancelled'
                       OR (r.status = 'queued' AND m.status = 'cancelled')) AS cancelled,
      count(*) FILTER (WHERE m.status IN ('sent','delivered','read') AND EXISTS (
          SELECT 1 FROM messages i
          WHERE i.conversation_id = m.conversation_id AND i.direction = 'in'
            AND i.seq > m.seq
            AND NOT EXISTS (
              SELECT 1 FROM campaign_recipients r2 JOIN messages m2 ON m2.id = r2.message_id
              WHERE m2.conversation_id = m.conversation_id AND m2.seq > m.seq
                AND m2.seq < i.seq))) AS replied
    FROM campaign_recipients r LEFT JOIN messages m ON m.id = r.message_id
    WHERE r.campaign_id = :campaign_id
    """
)


def _event(action: str, by: uuid.UUID | None, at: datetime, **extra: object) -> dict[str, Any]:
    return {"action": action, "by": str(by) if by else None, "at": at.isoformat(), **extra}


class CampaignService:
    """Contact lists and campaigns: import, create, launch, pause, resume, cancel, progress."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        ticks: TickScheduler,
        clock: Clock,
        default_region: str = "MX",
        max_csv_rows: int = 50_000,
    ) -> None:
        self._sessions = sessions
        self._ticks = ticks
        self._clock = clock
        self._region = default_region
        self._max_rows = max_csv_rows

    # -- contact lists -------------------------------------------------------------
    async def import_list(
        self,
        *,
        name: str,
        data: bytes,
        created_by: uuid.UUID | None,
        assigned_agent_id: uuid.UUID | None = None,
        assigned_team_id: uuid.UUID | None = None,
    ) -> ListView:
        """Store a cartera from CSV bytes; invalid, duplicate and opted-out rows are
        left out and listed with the reason."""
        try:
            parsed = parse_contacts_csv(data, default_region=self._region, max_rows=self._max_rows)
        except CsvListError as exc:
            raise CampaignRejected(f"CSV not usable: {exc}") from exc
        async with self._sessions() as session, session.begin():
            if assigned_agent_id is not None:
                agent = await session.get(User, assigned_agent_id)
                if agent is None or not agent.active:
                    raise CampaignRejected(f"no active staff user {assigned_agent_id}")
            if assigned_team_id is not None and await session.get(Team, assigned_team_id) is None:
                raise CampaignRejected(f"no team {assigned_team_id}")
            opted_out = set(
                (
                    await session.execute(
                        select(Contact.phone_e164).where(
                            Contact.opted_out.is_(True),
                            Contact.phone_e164.in_([r.phone_e164 for r in parsed.rows]),
                        )
                    )
                ).scalars()
            )
            rejected = [r.to_json() for r in parsed.rejected] + [
                {"row": r.row_number, "reason": "opted_out", "phone": r.phone_e164,
                 "detail": "the customer asked not to receive messages"}
                for r in parsed.rows if r.phone_e164 in opted_out
            ]
            rejected.sort(key=lambda r: int(str(r["row"])))
            kept = [r for r in parsed.rows if r.phone_e164 not in opted_out]
            cartera = ContactList(
                id=uuid.uuid4(), name=name, source="csv_upload", fields=parsed.fields,
                total_rows=parsed.total_rows, accepted=len(kept), report=rejected,
                assigned_agent_id=assigned_agent_id, assigned_team_id=assigned_team_id,
                created_by=created_by,
            )
            session.add(cartera)
            await session.flush()
            if kept:
                await session.execute(
                    insert(ContactListEntry),
                    [
                        {"id": uuid.uuid4(), "list_id": cartera.id, "row_number": r.row_number,
                         "phone_e164": r.phone_e164, "name": r.name, "fields": r.fields}
                        for r in kept
                    ],
                )
        log.info(
            "campaigns.list_imported", list_id=str(cartera.id), accepted=len(kept),
            rejected=len(rejected), by=str(created_by),
        )
        return await self.get_list(cartera.id)

    async def get_list(self, list_id: uuid.UUID) -> ListView:
        async with self._sessions() as session:
            row = await session.get(ContactList, list_id)
            if row is None:
                raise NotFound(f"contact list {list_id} not found")
            return _list_view(row)

    async def lists(self, *, assigned_to: uuid.UUID | None = None) -> list[ListView]:
        """Every cartera, or only those assigned to one agent (directly or via a team)."""
        query = select(ContactList).order_by(ContactList.created_at.desc())
        if assigned_to is not None:
            teams = select(TeamMember.team_id).where(TeamMember.user_id == assigned_to)
            query = query.where(
                (ContactList.assigned_agent_id == assigned_to)
                | ContactList.assigned_team_id.in_(teams)
            )
        async with self._sessions() as session:
            return [_list_view(r) for r in (await session.execute(query)).scalars()]

    # -- campaigns -----------------------------------------------------------------
    async def create(self, draft: CampaignDraft, *, created_by: uuid.UUID | None) -> CampaignView:
        """Validate and store a draft campaign (nothing is sent until ``launch``)."""
        async with self._sessions() as session, session.begin():
            cartera = await session.get(ContactList, draft.list_id)
            if cartera is None:
                raise NotFound(f"contact list {draft.list_id} not found")
            await self._validate(session, draft, cartera)
            campaign = Campaign(
                id=uuid.uuid4(), name=draft.name, list_id=draft.list_id, channel=draft.channel,
                account=draft.account, variants=list(draft.variants),
                template_name=draft.template_name,
                template_language=draft.template_language if draft.template_name else None,
                template_params=list(draft.template_params), schedule=draft.window.to_json(),
                pacing=draft.pacing.to_json(), status="draft", created_by=created_by,
                burst_count=0, burst_size=0,
                events=[_event("created", created_by, self._clock())],
            )
            session.add(campaign)
        log.info("campaigns.created", campaign_id=str(campaign.id), by=str(created_by))
        return await self.get(campaign.id)

    async def _validate(
        self, session: AsyncSession, draft: CampaignDraft, cartera: ContactList
    ) -> None:
        try:
            used = validate_variants(draft.variants, cartera.fields)
            validate_variants(
                ["".join(f"{{{p}}}" for p in draft.template_params) or "-"], cartera.fields
            )
        except TemplateError as exc:
            raise CampaignRejected(str(exc)) from exc
        if draft.channel == CLOUD_CHANNEL and not draft.template_name:
            raise CampaignRejected(
                "a Cloud API number needs an approved template (template_name) for customers "
                "outside the 24-hour window"
            )
        needed = used + [p for p in draft.template_params if p not in used]
        entries = (
            await session.execute(
                select(ContactListEntry).where(ContactListEntry.list_id == cartera.id)
            )
        ).scalars().all()
        if not entries:
            raise CampaignRejected("the contact list has no contacts")
        missing = []
        for entry in entries:
            values = values_for(entry.name, entry.phone_e164, entry.fields)
            empty = [v for v in needed if not values.get(v, "").strip()]
            if empty:
                missing.append({"row": entry.row_number, "phone": entry.phone_e164,
                                "missing": empty})
        if missing:
            raise CampaignRejected(
                f"{len(missing)} contact(s) have no value for a variable the message uses",
                details=missing[:50],
            )

    async def launch(self, campaign_id: uuid.UUID, *, by: uuid.UUID | None) -> CampaignView:
        """Snapshot the list into recipients (opted-out contacts skipped) and start."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            campaign = await self._locked(session, campaign_id)
            if campaign.status != "draft":
                raise CampaignStateError(f"campaign is {campaign.status}; only a draft launches")
            cartera = await session.get(ContactList, campaign.list_id)
            assert cartera is not None
            draft = CampaignDraft(
                name=campaign.name, list_id=campaign.list_id, variants=campaign.variants,
                channel=campaign.channel, account=campaign.account,
                template_name=campaign.template_name, template_params=campaign.template_params,
            )
            await self._validate(session, draft, cartera)
            await session.execute(
                text(
                    """
                    INSERT INTO campaign_recipients
                      (id, campaign_id, position, phone_e164, name, fields, channel, account,
                       status, reason)
                    SELECT gen_random_uuid(), :cid,
                           row_number() OVER (ORDER BY e.row_number) - 1,
                           e.phone_e164, e.name, e.fields, :channel, :account,
                           CASE WHEN c.opted_out THEN 'skipped' ELSE 'pending' END,
                           CASE WHEN c.opted_out THEN 'opted_out' END
                    FROM contact_list_entries e
                    LEFT JOIN contacts c ON c.phone_e164 = e.phone_e164
                    WHERE e.list_id = :lid
                    ON CONFLICT (campaign_id, phone_e164) DO NOTHING
                    """
                ),
                {"cid": campaign.id, "lid": campaign.list_id, "channel": campaign.channel,
                 "account": campaign.account},
            )
            campaign.status = "running"
            campaign.launched_by = by
            campaign.launched_at = now
            campaign.next_send_at = now
            campaign.events = [*campaign.events, _event("launched", by, now)]
        await self._ticks.defer_campaign(campaign_id)
        log.info("campaigns.launched", campaign_id=str(campaign_id), by=str(by))
        return await self.get(campaign_id)

    async def pause(self, campaign_id: uuid.UUID, *, by: uuid.UUID | None) -> CampaignView:
        """Stop releasing messages; released ones not yet sent go back to waiting."""
        await self._transition(campaign_id, by, "pause", {"running"}, "paused")
        return await self.get(campaign_id)

    async def resume(self, campaign_id: uuid.UUID, *, by: uuid.UUID | None) -> CampaignView:
        await self._transition(campaign_id, by, "resume", {"paused"}, "running")
        await self._ticks.defer_campaign(campaign_id)
        return await self.get(campaign_id)

    async def cancel(self, campaign_id: uuid.UUID, *, by: uuid.UUID | None) -> CampaignView:
        """Stop for good: nothing more is released, released-but-unsent rows are cancelled."""
        await self._transition(
            campaign_id, by, "cancel", {"draft", "running", "paused"}, "cancelled"
        )
        return await self.get(campaign_id)

    async def _transition(
        self, campaign_id: uuid.UUID, by: uuid.UUID | None, action: str,
        allowed: set[str], target: str,
    ) -> None:
        now = self._clock()
        async with self._sessions() as session, session.begin():
            campaign = await self._locked(session, campaign_id)
            if campaign.status not in allowed:
                raise CampaignStateError(f"campaign is {campaign.status}; cannot {action}")
            withdrawn = 0
            if target in ("paused", "cancelled"):
                final = target == "cancelled"
                withdrawn = await _withdraw_unsent(session, campaign_id, final=final)
            if target == "cancelled":
                await session.execute(
                    update(CampaignRecipient)
                    .where(CampaignRecipient.campaign_id == campaign_id,
                           CampaignRecipient.status == "pending")
                    .values(status="cancelled", reason="campaign cancelled")
                )
                campaign.finished_at = now
            if target == "running":
                campaign.next_send_at = max(campaign.next_send_at or now, now)
            if target == "paused":
                campaign.burst_count = 0
            campaign.status = target
            campaign.events = [*campaign.events, _event(action, by, now, withdrawn=withdrawn)]
        log.info(f"campaigns.{action}", campaign_id=str(campaign_id), by=str(by),
                 withdrawn=withdrawn)

    async def _locked(self, session: AsyncSession, campaign_id: uuid.UUID) -> Campaign:
        campaign = (
            await session.execute(
                select(Campaign).where(Campaign.id == campaign_id).with_for_update()
            )
        ).scalar_one_or_none()
        if campaign is None:
            raise NotFound(f"campaign {campaign_id} not found")
        return campaign

    async def get(self, campaign_id: uuid.UUID) -> CampaignView:
        async with self._sessions() as session:
            campaign = await session.get(Campaign, campaign_id)
            if campaign is None:
                raise NotFound(f"campaign {campaign_id} not found")
            return _campaign_view(campaign, await _progress(session, campaign_id))

    async def campaigns(self) -> list[CampaignView]:
        async with self._sessions() as session:
            rows = (
                await session.execute(select(Campaign).order_by(Campaign.created_at.desc()))
            ).scalars().all()
            return [_campaign_view(c, await _progress(session, c.id)) for c in rows]

    async def recipients(
        self, campaign_id: uuid.UUID, *, status: str | None = None, limit: int = 200,
        offset: int = 0,
    ) -> list[RecipientView]:
        query = (
            select(CampaignRecipient, Message.status)
            .outerjoin(Message, Message.id == CampaignRecipient.message_id)
            .where(CampaignRecipient.campaign_id == campaign_id)
            .order_by(CampaignRecipient.position)
            .limit(limit)
            .offset(offset)
        )
        if status is not None:
            query = query.where(CampaignRecipient.status == status)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [
            RecipientView(
                id=r.id, position=r.position, phone_e164=r.phone_e164, name=r.name,
                status=r.status, reason=r.reason, variant=r.variant, message_status=ms,
                queued_at=r.queued_at, conversation_id=r.conversation_id,
            )
            for r, ms in rows
        ]

    async def campaign_of_conversation(self, conversation_id: uuid.UUID) -> uuid.UUID | None:
        """The campaign whose message this conversation got last (replies count for it)."""
        async with self._sessions() as session:
            found: uuid.UUID | None = (
                await session.execute(
                    select(CampaignRecipient.campaign_id)
                    .join(Message, Message.id == CampaignRecipient.message_id)
                    .where(Message.conversation_id == conversation_id)
                    .order_by(Message.seq.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
        return found


async def _withdraw_unsent(session: AsyncSession, campaign_id: uuid.UUID, *, final: bool) -> int:
    """Cancel the campaign's outbox rows the sender has not claimed yet.

    A row being sent right now is locked by the sender: this UPDATE waits for it and
    then finds it no longer ``pending``, so it is never both sent and withdrawn.
    """
    cancelled = (
        await session.execute(
            update(Message)
            .where(
                Message.id.in_(
                    select(CampaignRecipient.message_id).where(
                        CampaignRecipient.campaign_id == campaign_id,
                        CampaignRecipient.status == "queued",
                    )
                ),
                Message.status == "pending",
            )
            .values(status="cancelled", error="campaign cancelled" if final else "campaign paused")
            .returning(Message.id)
        )
    ).scalars().all()
    if cancelled:
        values: dict[str, Any] = (
            {"status": "cancelled", "reason": "campaign cancelled"}
            if final
            else {"status": "pending", "message_id": None, "queued_at": None, "variant": None}
        )
        await session.execute(
            update(CampaignRecipient)
            .where(CampaignRecipient.message_id.in_(cancelled))
            .values(**values)
        )
    return len(cancelled)


async def _progress(session: AsyncSession, campaign_id: uuid.UUID) -> Progress:
    row = (await session.execute(_PROGRESS_SQL, {"campaign_id": campaign_id})).one()
    return Progress(**{k: int(v or 0) for k, v in row._mapping.items()})


def _list_view(row: ContactList) -> ListView:
    return ListView(
        id=row.id, name=row.name, fields=list(row.fields), total_rows=row.total_rows,
        accepted=row.accepted, rejected=list(row.report),
        assigned_agent_id=row.assigned_agent_id, assigned_team_id=row.assigned_team_id,
        created_at=row.created_at,
    )


def _campaign_view(c: Campaign, progress: Progress) -> CampaignView:
    return CampaignView(
        id=c.id, name=c.name, list_id=c.list_id, channel=c.channel, account=c.account,
        status=c.status, variants=list(c.variants), window=dict(c.schedule),
        pacing=dict(c.pacing), template_name=c.template_name, created_by=c.created_by,
        launched_by=c.launched_by, launched_at=c.launched_at, finished_at=c.finished_at,
        next_send_at=c.next_send_at, events=list(c.events), progress=progress,
    )


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
        # INSERT … ON CONFLICT DO UPDATE locks the contact row until commit, so an
        # opt-out committed meanwhile waits and then (trigger) cancels this row.
        contact = (
            await session.execute(
                insert(Contact)
                .values(id=uuid.uuid4(), phone_e164=recipient.phone_e164, name=recipient.name)
                .on_conflict_do_update(
                    index_elements=["phone_e164"],
                    set_={"name": func.coalesce(Contact.name, recipient.name)},
                )
                .returning(Contact.id, Contact.opted_out)
            )
        ).one()
        recipient.contact_id = contact.id
        if contact.opted_out:
            _skip(recipient, "opted_out")
            return None
        conversation = (
            await session.execute(
                insert(Conversation)
                .values(id=uuid.uuid4(), contact_id=contact.id, channel=campaign.channel,
                        account=campaign.account, owner=Owner.BOT.value)
                .on_conflict_do_update(
                    constraint="uq_conversation_key", set_={"channel": campaign.channel}
                )
                .returning(Conversation.id, Conversation.owner, Conversation.last_inbound_at)
            )
        ).one()
        conversation_id: uuid.UUID = conversation.id
        recipient.conversation_id = conversation_id
        if conversation.owner in (Owner.HUMAN.value, Owner.QUEUED.value):
            _skip(recipient, "talking_to_agent")
            return None
        variant = recipient.position % len(campaign.variants)
        values = values_for(recipient.name, recipient.phone_e164, recipient.fields)
        try:
            body = render(campaign.variants[variant], values)
            raw = self._template(campaign, values, conversation.last_inbound_at, now)
        except TemplateError as exc:
            _skip(recipient, f"template: {exc}")
            return None
        message_id = uuid.uuid4()
        await session.execute(
            insert(Message).values(
                id=message_id, conversation_id=conversation.id, direction="out",
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
        campaign.events = [*campaign.events, _event("completed", None, now)]
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

