"""Campaign value types shared by the campaign service, the list import and the scheduler."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.campaigns.schedule import Pacing, Window
from bot.channels.simulator import SIMULATOR, SIMULATOR_ACCOUNT

CLOUD_CHANNEL = "whatsapp_cloud"  # bot.channels.cloud_api.CLOUD_CHANNEL


@dataclass(frozen=True, slots=True)
class ListView:
    """A stored contact list (cartera) and the rows its import left out, with why."""

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
    skipped: int = 0  # opted out, talking to an agent or probably blocked, at release time
    cancelled: int = 0


@dataclass(frozen=True, slots=True)
class CampaignView:
    """A campaign as the admin sees it: settings, audit trail and progress."""

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
    """One recipient of a launched campaign and what happened to its message."""

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


def campaign_event(
    action: str, by: uuid.UUID | None, at: datetime, **extra: object
) -> dict[str, Any]:
    """One entry of ``Campaign.events`` (the campaign's audit trail)."""
    return {"action": action, "by": str(by) if by else None, "at": at.isoformat(), **extra}
