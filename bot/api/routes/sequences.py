"""Follow-up sequences over HTTP: definitions (admin), enrollments (API, contact list, an
agent from the inbox), stopping, the "to do by hand" list, blocked contacts; the admin page.

Thin handlers: parse, call one service, return.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime, time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from bot.api.auth import (
    AdminDep,
    PageSupervisor,
    StaffDep,
    SupervisorDep,
    audit,
)
from bot.api.deps import RuntimeDep
from bot.api.pages import render
from bot.blocking import BlockView
from bot.phones import normalize_phone
from bot.sequences import EnrollmentView, SequenceDraft, SequenceView, Step, StepTemplate
from bot.sequences.validation import MAX_STEPS
from bot.sequences.values import MAX_DELAY_MINUTES, TaskView

router = APIRouter(prefix="/api/v1", tags=["sequences"])
pages = APIRouter(include_in_schema=False)


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="an approved template")
    language: str = Field(default="es_MX", min_length=2, max_length=16)
    params: list[str] = Field(default=[], max_length=10,
                              description="variables filling the body's {{1}}, {{2}}…")


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delay_minutes: int = Field(
        ge=0, le=MAX_DELAY_MINUTES,
        description="after the previous step (or the enrollment, for the first step or "
        "with after=enrollment); later steps wait at least 1 minute",
    )
    text: str = Field(min_length=1, max_length=4096,
                      description="the message; {nombre}, {telefono} and list fields fill in")
    after: Literal["previous", "enrollment"] = "previous"
    template: TemplateIn | None = Field(
        default=None, description="Cloud API only: sent when the 24-hour window is closed "
        "(without one, the step goes to the 'to do by hand' list)")
    days: list[Annotated[int, Field(ge=0, le=6)]] | None = Field(
        default=None, max_length=7, description="allowed days, 0 = Monday … 6 = Sunday")
    start: time | None = Field(default=None, description="allowed from (local time)")
    end: time | None = Field(default=None, description="allowed until (local time)")


class SequenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    steps: list[StepIn] = Field(min_length=1, max_length=MAX_STEPS)
    stop_on_reply: bool = Field(default=True, description="a customer reply stops it")
    on_reply: Literal["stop", "pause", "continue"] | None = Field(
        default=None, description="overrides stop_on_reply: pause = the next step waits "
        "until the customer has been quiet as long as its delay")
    on_human: Literal["stop", "pause"] = "pause"
    on_opt_out: Literal["stop", "pause"] = "stop"
    channel: str | None = Field(default=None, max_length=32,
                                description="number used for enrollments by phone")
    account: str | None = Field(default=None, max_length=64)
    timezone: str | None = Field(default=None, max_length=64,
                                 description="of the allowed hours (default: the business's)")
    auto_intent: str | None = Field(default=None, min_length=1, max_length=64,
                                    description="enroll every customer with this intent")
    auto_escalated_only: bool = Field(default=False,
                                      description="…only when the message was handed over")


class EnrollBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str = Field(min_length=3, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    fields: dict[str, Annotated[str, Field(max_length=500)]] = Field(default={}, max_length=50)
    again: bool = Field(default=False, description="enroll a contact who was in it before")


class EnrollListBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    list_id: uuid.UUID


class EnrollConversationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sequence_id: uuid.UUID
    again: bool = Field(default=False, description="enroll a contact who was in it before")


class StepStatsPublic(BaseModel):
    step: int
    queued: int
    sent: int
    delivered: int
    read: int
    replied: int
    failed: int
    cancelled: int
    by_hand: int
    stopped: int


class SequencePublic(BaseModel):
    id: uuid.UUID
    name: str
    channel: str
    account: str
    timezone: str
    steps: list[dict[str, Any]]
    stop_on_reply: bool
    on_reply: str
    on_human: str
    on_opt_out: str
    auto_intent: str | None
    auto_escalated_only: bool
    status: str
    created_by: uuid.UUID | None
    created_at: datetime
    enrollments: dict[str, int]
    analytics: list[StepStatsPublic]


class EnrollmentPublic(BaseModel):
    id: uuid.UUID
    sequence_id: uuid.UUID
    sequence_name: str
    phone: str
    name: str | None
    conversation_id: uuid.UUID
    state: Literal["active", "stopped", "completed"]
    steps_sent: int
    next_step: int
    total_steps: int
    stop_reason: str | None
    paused_reason: str | None
    source: str
    enrolled_at: datetime
    due_at: datetime | None
    finished_at: datetime | None
    new_contact: bool


class SkippedRow(BaseModel):
    row: str
    phone: str
    reason: str
    detail: str


class EnrollReportPublic(BaseModel):
    enrolled: int
    skipped: list[SkippedRow]


class TaskPublic(BaseModel):
    id: uuid.UUID
    conversation_id: uuid.UUID
    contact_phone: str
    contact_name: str | None
    sequence_id: uuid.UUID
    sequence_name: str
    step: int
    text: str | None
    reason: str | None
    created_at: datetime
    done_at: datetime | None
    done_by: uuid.UUID | None


class BlockPublic(BaseModel):
    blocked: bool
    conversation_id: uuid.UUID
    contact_phone: str | None = None
    contact_name: str | None = None
    channel: str | None = None
    account: str | None = None
    since: datetime | None = None
    undelivered: int = 0
    evidence: dict[str, Any] = {}
    cleared_at: datetime | None = None
    cleared_reason: str | None = None


def _sequence(view: SequenceView) -> SequencePublic:
    return SequencePublic.model_validate(asdict(view))


def _enrollment(view: EnrollmentView) -> EnrollmentPublic:
    return EnrollmentPublic.model_validate(asdict(view))


def _task(view: TaskView) -> TaskPublic:
    return TaskPublic.model_validate(asdict(view))


def _block(conversation_id: uuid.UUID, view: BlockView | None) -> BlockPublic:
    if view is None:
        return BlockPublic(blocked=False, conversation_id=conversation_id)
    return BlockPublic(
        blocked=view.state == "blocked", conversation_id=view.conversation_id,
        contact_phone=view.contact_phone, contact_name=view.contact_name,
        channel=view.channel, account=view.account, since=view.blocked_at,
        undelivered=view.undelivered, evidence=view.evidence, cleared_at=view.cleared_at,
        cleared_reason=view.cleared_reason,
    )


def _draft(body: SequenceCreate, runtime: RuntimeDep) -> SequenceDraft:
    steps = tuple(
        Step(delay_minutes=s.delay_minutes, text=s.text, after=s.after,
             template=StepTemplate(s.template.name, s.template.language,
                                   tuple(s.template.params)) if s.template else None,
             days=tuple(s.days) if s.days is not None else None, start=s.start, end=s.end)
        for s in body.steps
    )
    defaults = SequenceDraft(name=body.name, steps=steps)
    return SequenceDraft(
        name=body.name.strip(), steps=steps,
        on_reply=body.on_reply or ("stop" if body.stop_on_reply else "continue"),
        on_human=body.on_human, on_opt_out=body.on_opt_out,
        channel=body.channel or defaults.channel, account=body.account or defaults.account,
        timezone=body.timezone or runtime.settings.business_timezone,
        auto_intent=body.auto_intent, auto_escalated_only=body.auto_escalated_only,
    )


# ---------------------------------------------------------------- sequences


@router.post("/sequences", status_code=201, response_model=SequencePublic)
async def create_sequence(
    body: SequenceCreate, runtime: RuntimeDep, admin: AdminDep
) -> SequencePublic:
    """Define a sequence; returns it with its ``id`` (422 naming what is wrong, 409 when
    the name is taken)."""
    view = await runtime.sequences.create(_draft(body, runtime), by=admin.id)
    await audit(runtime, admin, "sequence.create", f"sequence:{view.id}", name=view.name)
    return _sequence(view)


@router.get("/sequences", response_model=list[SequencePublic])
async def list_sequences(runtime: RuntimeDep, _: StaffDep) -> list[SequencePublic]:
    """Every sequence (agents read it to enroll customers from the inbox)."""
    return [_sequence(v) for v in await runtime.sequences.sequences()]


@router.get("/sequences/{sequence_id}", response_model=SequencePublic)
async def get_sequence(
    sequence_id: uuid.UUID, runtime: RuntimeDep, _: SupervisorDep
) -> SequencePublic:
    """The sequence with per-step figures: sent, delivered, read, replied, by hand, stopped."""
    return _sequence(await runtime.sequences.get(sequence_id))


@router.delete("/sequences/{sequence_id}", response_model=SequencePublic)
async def delete_sequence(
    sequence_id: uuid.UUID, runtime: RuntimeDep, admin: AdminDep,
    stop_active: Annotated[bool, Query(description="also stop the contacts still in it")] = False,
) -> SequencePublic:
    """Retire a sequence: 409 while contacts are in it, unless ``stop_active=true``."""
    view = await runtime.sequences.delete(sequence_id, by=admin.id, stop_active=stop_active)
    await audit(runtime, admin, "sequence.delete", f"sequence:{sequence_id}",
                stopped=stop_active)
    return _sequence(view)


# ---------------------------------------------------------------- enrollments


@router.post("/sequences/{sequence_id}/enrollments", status_code=201,
             response_model=EnrollmentPublic)
async def enroll_phone(
    sequence_id: uuid.UUID, body: EnrollBody, runtime: RuntimeDep, principal: SupervisorDep
) -> EnrollmentPublic:
    """Enroll a phone number on the sequence's number (409: already in it, opted out,
    probably blocked; 422: invalid number or a missing template value)."""
    phone = normalize_phone(body.phone, runtime.settings.default_region)
    view = await runtime.sequences.enroll_phone(
        sequence_id, phone=phone, name=body.name, fields=body.fields, by=principal.id,
        again=body.again)
    await audit(runtime, principal, "sequence.enroll", f"sequence:{sequence_id}",
                enrollment_id=str(view.id))
    return _enrollment(view)


@router.post("/sequences/{sequence_id}/enrollments/from-list",
             response_model=EnrollReportPublic)
async def enroll_list(
    sequence_id: uuid.UUID, body: EnrollListBody, runtime: RuntimeDep,
    principal: SupervisorDep,
) -> EnrollReportPublic:
    """Enroll a whole contact list; the rows left out come back with the reason."""
    report = await runtime.sequences.enroll_list(sequence_id, body.list_id, by=principal.id)
    await audit(runtime, principal, "sequence.enroll_list", f"sequence:{sequence_id}",
                list_id=str(body.list_id), enrolled=report.enrolled)
    return EnrollReportPublic.model_validate(asdict(report))


@router.get("/sequences/{sequence_id}/enrollments", response_model=list[EnrollmentPublic])
async def list_enrollments(
    sequence_id: uuid.UUID, runtime: RuntimeDep, _: SupervisorDep,
    state: Annotated[Literal["active", "stopped", "completed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[EnrollmentPublic]:
    """Who is (or was) in the sequence: state, steps sent, why it stopped."""
    views = await runtime.sequences.enrollments(sequence_id, state=state, limit=limit,
                                                offset=offset)
    return [_enrollment(v) for v in views]


@router.post("/sequence-enrollments/{enrollment_id}/stop", response_model=EnrollmentPublic)
async def stop_enrollment(
    enrollment_id: uuid.UUID, runtime: RuntimeDep, principal: StaffDep
) -> EnrollmentPublic:
    """Stop one contact's sequence now (agents: conversations they can see)."""
    view = await runtime.sequences.stop(enrollment_id, actor=principal)
    await audit(runtime, principal, "sequence.stop", f"enrollment:{enrollment_id}")
    return _enrollment(view)


@router.get("/conversations/{conversation_id}/sequences",
            response_model=list[EnrollmentPublic])
async def conversation_sequences(
    conversation_id: uuid.UUID, runtime: RuntimeDep, principal: StaffDep
) -> list[EnrollmentPublic]:
    """This customer's sequences on this number, active first."""
    views = await runtime.sequences.of_conversation(conversation_id, actor=principal)
    return [_enrollment(v) for v in views]


@router.post("/conversations/{conversation_id}/sequences", status_code=201,
             response_model=EnrollmentPublic)
async def enroll_conversation(
    conversation_id: uuid.UUID, body: EnrollConversationBody, runtime: RuntimeDep,
    principal: StaffDep,
) -> EnrollmentPublic:
    """An agent enrolls this customer (on this conversation's number)."""
    view = await runtime.sequences.enroll_conversation(
        body.sequence_id, conversation_id, actor=principal, again=body.again)
    await audit(runtime, principal, "sequence.enroll", f"conversation:{conversation_id}",
                enrollment_id=str(view.id))
    return _enrollment(view)


# ---------------------------------------------------------------- by hand, blocked


@router.get("/sequence-tasks", response_model=list[TaskPublic])
async def list_tasks(
    runtime: RuntimeDep, principal: StaffDep,
    done: Annotated[bool, Query(description="include the ones already done")] = False,
    conversation_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[TaskPublic]:
    """The "to do by hand" list: steps the sequences could not send themselves."""
    views = await runtime.hand_list.tasks(principal, open_only=not done,
                                          conversation_id=conversation_id, limit=limit)
    return [_task(v) for v in views]


@router.post("/sequence-tasks/{task_id}/done", response_model=TaskPublic)
async def task_done(task_id: uuid.UUID, runtime: RuntimeDep, principal: StaffDep) -> TaskPublic:
    view = await runtime.hand_list.done(task_id, actor=principal)
    await audit(runtime, principal, "sequence.task_done", f"task:{task_id}")
    return _task(view)


@router.get("/conversations/{conversation_id}/blocked", response_model=BlockPublic)
async def conversation_block(
    conversation_id: uuid.UUID, runtime: RuntimeDep, principal: StaffDep
) -> BlockPublic:
    """Whether this customer probably blocked the number, with the evidence."""
    view = await runtime.blocked.of_conversation(conversation_id, actor=principal)
    return _block(conversation_id, view)


@router.delete("/conversations/{conversation_id}/blocked", response_model=BlockPublic)
async def clear_block(
    conversation_id: uuid.UUID, runtime: RuntimeDep, principal: StaffDep
) -> BlockPublic:
    """An agent clears the mark (404 when there is none)."""
    view = await runtime.blocked.clear(conversation_id, actor=principal)
    await audit(runtime, principal, "blocking.clear", f"conversation:{conversation_id}")
    return _block(conversation_id, view)


@router.get("/blocked-contacts", response_model=list[BlockPublic])
async def blocked_contacts(
    runtime: RuntimeDep, _: SupervisorDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[BlockPublic]:
    """Every conversation marked "probably blocked", newest first."""
    return [_block(v.conversation_id, v) for v in await runtime.blocked.marked(limit=limit)]


@pages.get("/admin/sequences", response_class=HTMLResponse)
async def sequences_page(
    request: Request, user: PageSupervisor, runtime: RuntimeDep
) -> HTMLResponse:
    views = [await runtime.sequences.get(v.id) for v in await runtime.sequences.sequences()]
    blocked = await runtime.blocked.marked(limit=50)
    return render(request, "sequences.html", user=user, areas=("sequences",),
                  title="nav.sequences", context={"sequences": views, "blocked": blocked})
