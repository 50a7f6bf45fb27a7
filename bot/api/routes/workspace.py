"""The inbox workspace API: tab counts and unread, read markers, the contact panel, label
colours, attachments, the supervisor's live dashboard and the business schedule.
Every handler: parse, call one service, return."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from bot.api.auth import AdminDep, StaffDep, SupervisorDep, audit
from bot.api.deps import RuntimeDep

router = APIRouter(prefix="/api/v1", tags=["inbox"])


class CountsPublic(BaseModel):
    queued: int
    mine: int
    open: int
    unread: int


class PastConversationPublic(BaseModel):
    conversation_id: uuid.UUID
    channel: str
    account: str
    owner: str
    last_message_at: datetime | None
    handoffs: int


class ContactPublic(BaseModel):
    id: uuid.UUID
    name: str | None
    phone: str | None
    email: str | None
    notes: str | None
    opted_out: bool
    conversations: list[PastConversationPublic]


class ContactUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    notes: str | None = Field(default=None, max_length=4000)


class LabelPublic(BaseModel):
    name: str
    color: str
    count: int


class LabelColorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")


class AttachmentSent(BaseModel):
    conversation_id: uuid.UUID
    message_id: uuid.UUID | None
    owner: str


class AtRiskPublic(BaseModel):
    conversation_id: uuid.UUID
    contact: str
    owner: str
    agent_name: str | None
    elapsed_seconds: float
    target_seconds: float
    breached: bool


class AgentLoadPublic(BaseModel):
    id: uuid.UUID
    name: str
    role: str
    online: bool
    load: int
    capacity: int


class DashboardPublic(BaseModel):
    queue_size: int
    longest_wait_seconds: float | None
    longest_wait_conversation: uuid.UUID | None
    agents_online: int
    with_agents: int
    sla_at_risk: list[AtRiskPublic]
    agents: list[AgentLoadPublic]


class SchedulePublic(BaseModel):
    hours: str
    timezone: str
    holidays: list[str]
    source: str
    updated_by: str | None


class ScheduleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hours: str = Field(max_length=500, description="e.g. 'mon-fri 09:00-18:00; sat 10:00-14:00'")
    timezone: str = Field(min_length=1, max_length=64)
    holidays: list[str] = Field(default_factory=list, max_length=366)


@router.get("/inbox/counts", response_model=CountsPublic)
async def inbox_counts(runtime: RuntimeDep, principal: StaffDep) -> CountsPublic:
    """Tab counts (queue, mine, open) and the caller's unread customer messages."""
    return CountsPublic.model_validate(asdict(await runtime.workspace.counts(principal)))


@router.post("/conversations/{conversation_id}/read", status_code=204)
async def mark_read(
    conversation_id: uuid.UUID, runtime: RuntimeDep, principal: StaffDep
) -> Response:
    """The caller has read the conversation up to its last message."""
    await runtime.workspace.mark_read(principal, conversation_id)
    return Response(status_code=204)


@router.get("/conversations/{conversation_id}/contact", response_model=ContactPublic)
async def get_contact(
    conversation_id: uuid.UUID, runtime: RuntimeDep, principal: StaffDep
) -> ContactPublic:
    """The customer: name, e-mail, notes and their conversations on every channel."""
    contact = await runtime.workspace.contact(principal, conversation_id)
    return ContactPublic.model_validate(asdict(contact))


@router.patch("/conversations/{conversation_id}/contact", response_model=ContactPublic)
async def update_contact(
    conversation_id: uuid.UUID, body: ContactUpdate, runtime: RuntimeDep, principal: StaffDep
) -> ContactPublic:
    """Edit the customer's name, e-mail and notes (staff only; never sent): the fields
    given change (an empty one clears), the others stay."""
    contact = await runtime.workspace.update_contact(
        principal, conversation_id, **body.model_dump(exclude_unset=True)
    )
    await audit(runtime, principal, "contact.update", f"contact:{contact.id}",
                conversation_id=str(conversation_id))
    return ContactPublic.model_validate(asdict(contact))


@router.get("/labels", response_model=list[LabelPublic])
async def list_labels(runtime: RuntimeDep, principal: StaffDep) -> list[LabelPublic]:
    """Labels in use (with how often) and their colours: the suggestions of the label field."""
    return [LabelPublic.model_validate(asdict(i)) for i in await runtime.workspace.labels()]


@router.put("/labels/{label}", response_model=LabelPublic)
async def set_label_color(
    label: str, body: LabelColorBody, runtime: RuntimeDep, principal: SupervisorDep
) -> LabelPublic:
    """Supervisors: a label's colour."""
    info = await runtime.workspace.set_label_color(label, body.color)
    await audit(runtime, principal, "label.color", f"label:{info.name}", color=info.color)
    return LabelPublic.model_validate(asdict(info))


@router.post("/conversations/{conversation_id}/attachments", response_model=AttachmentSent)
async def send_attachment(
    conversation_id: uuid.UUID,
    runtime: RuntimeDep,
    principal: StaffDep,
    file: Annotated[UploadFile, File(description="an image (JPEG, PNG, WebP) or a PDF")],
    caption: Annotated[str | None, Form(max_length=1024)] = None,
) -> AttachmentSent:
    """Send an image or a PDF to the customer as the agent (stored, then sent by the channel)."""
    outcome = await runtime.agent_files.send(
        principal, conversation_id, _chunks(file), mime_type=file.content_type or "",
        filename=file.filename, caption=caption,
    )
    await audit(runtime, principal, "conversation.attachment", f"conversation:{conversation_id}",
                message_id=str(outcome.message_id))
    return AttachmentSent(conversation_id=outcome.conversation_id,
                          message_id=outcome.message_id, owner=outcome.owner.value)


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(256 * 1024):
        yield chunk


@router.get("/dashboard", response_model=DashboardPublic)
async def dashboard(runtime: RuntimeDep, principal: SupervisorDep) -> DashboardPublic:
    """Supervisors: queue size, longest wait, agents online and their load, SLA at risk."""
    return DashboardPublic.model_validate(asdict(await runtime.workspace.dashboard()))


@router.get("/handoff/schedule", response_model=SchedulePublic)
async def get_schedule(runtime: RuntimeDep, principal: StaffDep) -> SchedulePublic:
    """Business hours and holidays in force (the environment's until an admin saves them)."""
    return SchedulePublic.model_validate(asdict(await runtime.schedule.current()))


@router.put("/handoff/schedule", response_model=SchedulePublic)
async def save_schedule(
    body: ScheduleBody, runtime: RuntimeDep, principal: AdminDep
) -> SchedulePublic:
    """Admins: business hours and holidays, in force at once in every process (≤ 5 s)."""
    view = await runtime.schedule.save(
        hours=body.hours, timezone=body.timezone, holidays=body.holidays, by=principal.email
    )
    await audit(runtime, principal, "schedule.update", "schedule", hours=view.hours,
                timezone=view.timezone, holidays=list(view.holidays))
    return SchedulePublic.model_validate(asdict(view))


@router.delete("/handoff/schedule", response_model=SchedulePublic)
async def reset_schedule(runtime: RuntimeDep, principal: AdminDep) -> SchedulePublic:
    """Admins: back to the environment's hours and holidays."""
    view = await runtime.schedule.reset()
    await audit(runtime, principal, "schedule.reset", "schedule")
    return SchedulePublic.model_validate(asdict(view))
