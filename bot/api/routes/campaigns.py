"""Campaigns over HTTP: contact lists (CSV upload), campaigns, lifecycle, progress; admin pages.

Admins and supervisors only. Thin handlers: parse, call ``CampaignService``, return.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime, time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from bot.api.auth import Principal, Role, StaffDep, SupervisorDep, require_page_role
from bot.api.deps import RuntimeDep
from bot.api.pages import render
from bot.campaigns import CampaignDraft, CampaignService, CampaignView, ListView, Pacing, Window
from bot.campaigns.schedule import WindowError
from bot.channels.simulator import SIMULATOR, SIMULATOR_ACCOUNT
from bot.errors import CampaignRejected

router = APIRouter(prefix="/api/v1", tags=["campaigns"])
pages = APIRouter(include_in_schema=False)

PageSupervisor = Annotated[Principal, Depends(require_page_role(Role.ADMIN, Role.SUPERVISOR))]


def get_campaigns(runtime: RuntimeDep) -> CampaignService:
    return runtime.campaigns


CampaignsDep = Annotated[CampaignService, Depends(get_campaigns)]


class RejectedRowPublic(BaseModel):
    row: int
    reason: str
    phone: str
    detail: str = ""


class ContactListPublic(BaseModel):
    id: uuid.UUID
    name: str
    fields: list[str]
    total_rows: int
    accepted: int
    rejected: list[RejectedRowPublic]
    assigned_agent_id: uuid.UUID | None
    assigned_team_id: uuid.UUID | None
    created_at: datetime


class WindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: list[int] = Field(default=[0, 1, 2, 3, 4, 5], description="0 = Monday … 6 = Sunday")
    start: time = time(9, 0)
    end: time = time(19, 0)
    timezone: str = "America/Mexico_City"


class PacingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per_hour: int = Field(default=40, ge=1, le=1000)
    per_day: int = Field(default=180, ge=1, le=10000)
    burst_min: int = Field(default=5, ge=1)
    burst_max: int = Field(default=12, ge=1)
    gap_min_seconds: float = Field(default=8.0, ge=0)
    gap_max_seconds: float = Field(default=25.0, ge=0)
    pause_min_seconds: float = Field(default=120.0, ge=0)
    pause_max_seconds: float = Field(default=420.0, ge=0)


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    list_id: uuid.UUID
    variants: list[str] = Field(min_length=1, max_length=20)
    channel: str = Field(default=SIMULATOR, min_length=1, max_length=32,
                         description="simulator, whatsapp (neonize) or whatsapp_cloud")
    account: str = Field(default=SIMULATOR_ACCOUNT, min_length=1, max_length=64,
                         description="the business number sending it (its channel account)")
    window: WindowIn = WindowIn()
    pacing: PacingIn = PacingIn()
    template_name: str | None = Field(default=None, max_length=200)
    template_language: str = Field(default="es_MX", max_length=16)
    template_params: list[str] = Field(default=[], max_length=20)


class ProgressPublic(BaseModel):
    total: int
    waiting: int
    queued: int
    sent: int
    delivered: int
    read: int
    replied: int
    failed: int
    skipped: int
    cancelled: int


class CampaignPublic(BaseModel):
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
    progress: ProgressPublic


class RecipientPublic(BaseModel):
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


def _list_public(view: ListView) -> ContactListPublic:
    return ContactListPublic.model_validate(asdict(view))


def _public(view: CampaignView) -> CampaignPublic:
    return CampaignPublic.model_validate(asdict(view))


@router.post("/contact-lists", status_code=201, response_model=ContactListPublic)
async def upload_list(
    principal: SupervisorDep,
    runtime: RuntimeDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    file: Annotated[UploadFile, File(description="CSV: telefono, nombre, custom fields")],
    assigned_agent_id: Annotated[uuid.UUID | None, Form()] = None,
    assigned_team_id: Annotated[uuid.UUID | None, Form()] = None,
) -> ContactListPublic:
    """Upload a cartera; rejected rows come back with their reason."""
    limit = runtime.settings.campaigns.max_csv_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"the CSV is larger than {limit} bytes")
    view = await runtime.campaigns.import_list(
        name=name, data=data, created_by=principal.id,
        assigned_agent_id=assigned_agent_id, assigned_team_id=assigned_team_id,
    )
    return _list_public(view)


@router.get("/contact-lists", response_model=list[ContactListPublic])
async def list_lists(principal: StaffDep, campaigns: CampaignsDep) -> list[ContactListPublic]:
    """Admins and supervisors see every cartera; an agent sees the ones assigned to them."""
    mine = principal.id if principal.role is Role.AGENT else None
    return [_list_public(v) for v in await campaigns.lists(assigned_to=mine)]


@router.get("/contact-lists/{list_id}", response_model=ContactListPublic)
async def get_list(
    list_id: uuid.UUID, _: SupervisorDep, campaigns: CampaignsDep
) -> ContactListPublic:
    return _list_public(await campaigns.get_list(list_id))


@router.post("/campaigns", status_code=201, response_model=CampaignPublic)
async def create_campaign(
    body: CampaignCreate, principal: SupervisorDep, campaigns: CampaignsDep
) -> CampaignPublic:
    """Create a draft; unknown or empty template variables are refused here (422)."""
    try:
        window = Window(
            days=tuple(body.window.days), start=body.window.start, end=body.window.end,
            timezone=body.window.timezone,
        )
        pacing = Pacing(**body.pacing.model_dump())
    except WindowError as exc:
        raise CampaignRejected(str(exc)) from exc
    draft = CampaignDraft(
        name=body.name, list_id=body.list_id, variants=body.variants, channel=body.channel,
        account=body.account, window=window, pacing=pacing, template_name=body.template_name,
        template_language=body.template_language, template_params=body.template_params,
    )
    return _public(await campaigns.create(draft, created_by=principal.id))


@router.get("/campaigns", response_model=list[CampaignPublic])
async def list_campaigns(_: SupervisorDep, campaigns: CampaignsDep) -> list[CampaignPublic]:
    return [_public(v) for v in await campaigns.campaigns()]


@router.get("/campaigns/{campaign_id}", response_model=CampaignPublic)
async def get_campaign(
    campaign_id: uuid.UUID, _: SupervisorDep, campaigns: CampaignsDep
) -> CampaignPublic:
    """The campaign with live progress (sent, delivered, read, replied, failed…)."""
    return _public(await campaigns.get(campaign_id))


@router.post("/campaigns/{campaign_id}/{action}", response_model=CampaignPublic)
async def act(
    campaign_id: uuid.UUID,
    action: Literal["launch", "pause", "resume", "cancel"],
    principal: SupervisorDep,
    campaigns: CampaignsDep,
) -> CampaignPublic:
    """Start, pause, resume or cancel; 409 when the campaign's state does not allow it."""
    handler = {
        "launch": campaigns.launch, "pause": campaigns.pause,
        "resume": campaigns.resume, "cancel": campaigns.cancel,
    }[action]
    return _public(await handler(campaign_id, by=principal.id))


@router.get("/campaigns/{campaign_id}/recipients", response_model=list[RecipientPublic])
async def list_recipients(
    campaign_id: uuid.UUID,
    _: SupervisorDep,
    campaigns: CampaignsDep,
    status: Annotated[
        Literal["pending", "queued", "skipped", "cancelled"] | None, Query()
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[RecipientPublic]:
    """Who gets (or got) what: variant, state, the message's delivery status."""
    rows = await campaigns.recipients(campaign_id, status=status, limit=limit, offset=offset)
    return [RecipientPublic.model_validate(asdict(r)) for r in rows]


@pages.get("/admin/campaigns", response_class=HTMLResponse)
async def campaigns_page(
    request: Request, user: PageSupervisor, campaigns: CampaignsDep
) -> HTMLResponse:
    return render(
        request, "campaigns.html", user=user, areas=("campaigns",), title="nav.campaigns",
        script="campaigns",
        context={"campaigns": await campaigns.campaigns(), "lists": await campaigns.lists()},
    )


@pages.get("/admin/campaigns/{campaign_id}", response_class=HTMLResponse)
async def campaign_page(
    campaign_id: uuid.UUID, request: Request, user: PageSupervisor, campaigns: CampaignsDep
) -> HTMLResponse:
    return render(
        request, "campaign.html", user=user, areas=("campaign",), title="nav.campaigns",
        script="campaign",
        context={"campaign": await campaigns.get(campaign_id),
                 "recipients": await campaigns.recipients(campaign_id, limit=100)},
    )
