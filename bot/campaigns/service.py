"""The campaign service: drafts, the launch/pause/resume/cancel lifecycle, and progress.

Contact lists live in ``bot.campaigns.lists`` and the paced release in
``bot.campaigns.scheduler``; this service fronts the lists for the API.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.campaigns.lists import ContactLists
from bot.campaigns.models import Campaign, CampaignRecipient, ContactList, ContactListEntry
from bot.campaigns.scheduler import CampaignScheduler
from bot.campaigns.templating import TemplateError, validate_variants, values_for
from bot.campaigns.values import (
    CLOUD_CHANNEL,
    CampaignDraft,
    CampaignView,
    ListView,
    Progress,
    RecipientView,
    campaign_event,
)
from bot.clock import Clock
from bot.errors import CampaignRejected, CampaignStateError, NotFound
from bot.logs import get_logger
from handoff.conversations import Message

# Re-exported: these names were imported from this module before the scheduler, the
# lists and the value types got their own modules.
__all__ = [
    "CLOUD_CHANNEL",
    "CampaignDraft",
    "CampaignScheduler",
    "CampaignService",
    "CampaignView",
    "ListView",
    "Progress",
    "RecipientView",
    "TickScheduler",
]

log = get_logger("atiende.campaigns")


class TickScheduler(Protocol):
    """Durable campaign ticks (``bot.infra.jobs.JobQueue``)."""

    async def defer_campaign(self, campaign_id: uuid.UUID, *, delay_seconds: float = 0) -> bool:
        ...


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
        self._lists = ContactLists(
            sessions=sessions, default_region=default_region, max_csv_rows=max_csv_rows
        )

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
        return await self._lists.import_csv(
            name=name, data=data, created_by=created_by,
            assigned_agent_id=assigned_agent_id, assigned_team_id=assigned_team_id,
        )

    async def get_list(self, list_id: uuid.UUID) -> ListView:
        return await self._lists.get(list_id)

    async def lists(self, *, assigned_to: uuid.UUID | None = None) -> list[ListView]:
        """Every cartera, or only those assigned to one agent (directly or via a team)."""
        return await self._lists.all(assigned_to=assigned_to)

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
                events=[campaign_event("created", created_by, self._clock())],
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
                           CASE WHEN o.out THEN 'skipped' ELSE 'pending' END,
                           CASE WHEN o.out THEN 'opted_out' END
                    FROM contact_list_entries e
                    LEFT JOIN contacts c ON c.phone_e164 = e.phone_e164
                    -- an erased customer's opt-out survives as a salted hash (bot.privacy)
                    CROSS JOIN LATERAL (SELECT coalesce(c.opted_out, false) OR EXISTS (
                        SELECT 1 FROM privacy_optouts p
                        WHERE p.phone_hash = privacy_phone_hash(e.phone_e164)) AS out) o
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
            campaign.events = [*campaign.events, campaign_event("launched", by, now)]
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
            campaign.events = [
                *campaign.events, campaign_event(action, by, now, withdrawn=withdrawn)
            ]
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


def _campaign_view(c: Campaign, progress: Progress) -> CampaignView:
    return CampaignView(
        id=c.id, name=c.name, list_id=c.list_id, channel=c.channel, account=c.account,
        status=c.status, variants=list(c.variants), window=dict(c.schedule),
        pacing=dict(c.pacing), template_name=c.template_name, created_by=c.created_by,
        launched_by=c.launched_by, launched_at=c.launched_at, finished_at=c.finished_at,
        next_send_at=c.next_send_at, events=list(c.events), progress=progress,
    )
