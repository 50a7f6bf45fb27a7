"""The agent inbox API: conversations, claim, reply, transfer, resolve, notes, labels, live events.

Agents see their teams' conversations; supervisors see all and reassign; admins
manage users, teams and settings. Every handler: parse, call one service, return.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from bot.api.auth import Principal, Role, StaffDep, SupervisorDep, audit
from bot.api.deps import RuntimeDep
from bot.api.pages import api_lang
from bot.channels.simulator import SIMULATOR, SIMULATOR_ACCOUNT
from bot.errors import AtiendeError
from bot.logs import get_logger
from bot.phones import normalize_phone
from handoff.inbox import ConversationItem, ConversationView
from handoff.listing import ListFilter, Status
from handoff.ownership import Owner
from handoff.service import Outcome

if TYPE_CHECKING:
    from bot.wiring.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["inbox"])

KEEPALIVE_SECONDS = 15.0
MEDIA_LINK_SECONDS = 900
log = get_logger("atiende.api.inbox")


class TextBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4096)


class StartConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str = Field(min_length=3, max_length=40)
    text: str = Field(min_length=1, max_length=4096)
    name: str | None = Field(default=None, max_length=200)
    channel: str = Field(default=SIMULATOR, max_length=32)
    account: str = Field(default=SIMULATOR_ACCOUNT, max_length=64)


class TransferBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: uuid.UUID


class LabelsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[str] = Field(max_length=20)


class OutcomePublic(BaseModel):
    conversation_id: uuid.UUID
    owner: str
    assigned_agent_id: uuid.UUID | None
    message_id: uuid.UUID | None = None


class SlaPublic(BaseModel):
    target_seconds: float
    elapsed_seconds: float
    done: bool
    breached: bool
    paused: bool


class ConversationPublic(BaseModel):
    id: uuid.UUID
    owner: str
    owner_reason: str | None
    escalation_reason: str | None
    contact_name: str | None
    contact_phone: str | None
    channel: str
    last_intent: str | None
    assigned_agent_id: uuid.UUID | None
    assigned_agent_name: str | None
    team_id: uuid.UUID | None
    team_name: str | None
    ticket_opened_at: datetime | None
    last_message_at: datetime | None
    preview: str | None
    labels: list[str]
    first_response: SlaPublic | None
    account: str = ""
    preview_kind: str | None = None
    preview_from: str | None = None
    waiting_since: datetime | None = None
    unread: int = 0


class MessagePublic(BaseModel):
    id: uuid.UUID
    seq: int
    direction: str
    author: str
    author_name: str | None
    kind: str
    text: str | None
    transcript: str | None
    media: dict[str, Any] | None
    status: str
    created_at: datetime
    author_id: uuid.UUID | None = None


class NotePublic(BaseModel):
    id: uuid.UUID
    author_name: str
    text: str
    created_at: datetime


class TicketPublic(BaseModel):
    id: uuid.UUID
    team_name: str | None
    reason: str | None
    intent: str | None
    opened_at: datetime
    closed_at: datetime | None
    outcome: str | None
    csat_score: int | None
    first_response: SlaPublic
    resolution: SlaPublic


class ConversationDetail(BaseModel):
    conversation: ConversationPublic
    summary: str
    summary_source: str
    messages: list[MessagePublic]
    notes: list[NotePublic]
    ticket: TicketPublic | None
    history: list[TicketPublic]
    context_started_at: datetime | None


def _outcome(outcome: Outcome) -> OutcomePublic:
    return OutcomePublic(
        conversation_id=outcome.conversation_id, owner=outcome.owner.value,
        assigned_agent_id=outcome.assigned_agent_id, message_id=outcome.message_id,
    )


def _target(outcome: Outcome) -> str:
    return f"conversation:{outcome.conversation_id}"


def _message_id(outcome: Outcome) -> str | None:
    return _str(outcome.message_id)


def _str(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def _item(item: ConversationItem) -> ConversationPublic:
    return ConversationPublic.model_validate(asdict(item))


def _detail(view: ConversationView) -> ConversationDetail:
    data = asdict(view)
    data["conversation"] = data.pop("item")
    return ConversationDetail.model_validate(data)


# ---------------------------------------------------------------- conversations


@router.get("/conversations", response_model=list[ConversationPublic])
async def list_conversations(
    response: Response,
    runtime: RuntimeDep,
    principal: StaffDep,
    owner: Owner | None = None,
    mine: bool = False,
    status: Status = Status.ALL,
    q: Annotated[str | None, Query(max_length=200, description="name, phone or text")] = None,
    label: Annotated[str | None, Query(max_length=40)] = None,
    agent_id: uuid.UUID | None = None,
    team_id: uuid.UUID | None = None,
    channel: Annotated[str | None, Query(max_length=32)] = None,
    account: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[ConversationPublic]:
    """Conversations the caller may see, newest activity first: ``status`` (queued, mine,
    open, resolved, closed, all), search ``q`` over name, phone and message text, and
    filters. The next page's ``cursor`` comes in the ``X-Next-Cursor`` header."""
    filters = ListFilter(
        status=status, owner=owner, mine=mine, query=q, label=label, agent_id=agent_id,
        team_id=team_id, channel=channel, account=account, cursor=cursor, limit=limit,
    )
    items, next_cursor = await runtime.inbox.conversation_page(principal, filters)
    if next_cursor:
        response.headers["X-Next-Cursor"] = next_cursor
    return [_item(i) for i in items]


@router.post("/conversations", status_code=201, response_model=OutcomePublic)
async def start_conversation(
    body: StartConversation, runtime: RuntimeDep, principal: StaffDep
) -> OutcomePublic:
    """An agent writes first to a customer; the conversation is theirs and the bot stays out."""
    phone = normalize_phone(body.phone, runtime.settings.default_region)
    outcome = await runtime.handoff.start(
        principal, phone=phone, body=body.text, channel=body.channel, account=body.account,
        name=body.name,
    )
    await audit(runtime, principal, "conversation.start", _target(outcome), channel=body.channel)
    return _outcome(outcome)


@router.get("/conversations/{conversation_id}", response_model=ConversationDetail)
async def get_conversation(
    conversation_id: uuid.UUID, request: Request, runtime: RuntimeDep, principal: StaffDep
) -> ConversationDetail:
    """Transcript, summary, intent, escalation reason, customer history, notes, SLA; media
    come with short-lived signed links."""
    view = await runtime.inbox.view(principal, conversation_id, language=api_lang(request))
    detail = _detail(view)
    for message in detail.messages:
        key = (message.media or {}).get("key")
        if message.media is not None and isinstance(key, str):
            try:
                message.media["url"] = await runtime.media.url(key, expires_in=MEDIA_LINK_SECONDS)
            except AtiendeError as exc:  # a bad stored key must not break the whole view
                log.warning("inbox.media_link_failed", message_id=str(message.id), error=str(exc))
    return detail


@router.post("/conversations/{conversation_id}/claim", response_model=OutcomePublic)
async def claim(
    conversation_id: uuid.UUID, runtime: RuntimeDep, principal: StaffDep
) -> OutcomePublic:
    """Take a queued conversation (409 with the reason when someone else was first)."""
    outcome = await runtime.handoff.claim(principal, conversation_id)
    await audit(runtime, principal, "conversation.claim", f"conversation:{conversation_id}")
    return _outcome(outcome)


@router.post("/conversations/{conversation_id}/messages", response_model=OutcomePublic)
async def send_message(
    conversation_id: uuid.UUID, body: TextBody, runtime: RuntimeDep, principal: StaffDep
) -> OutcomePublic:
    """Send a message to the customer as the agent (through the outbox)."""
    outcome = await runtime.handoff.reply(principal, conversation_id, body.text)
    await audit(runtime, principal, "conversation.reply", f"conversation:{conversation_id}",
                message_id=_message_id(outcome))
    return _outcome(outcome)


@router.post("/conversations/{conversation_id}/resolve", response_model=OutcomePublic)
async def resolve(
    conversation_id: uuid.UUID, runtime: RuntimeDep, principal: StaffDep
) -> OutcomePublic:
    """Done: the conversation returns to the bot with a fresh context."""
    outcome = await runtime.handoff.resolve(principal, conversation_id)
    await audit(runtime, principal, "conversation.resolve", f"conversation:{conversation_id}")
    return _outcome(outcome)


@router.post("/conversations/{conversation_id}/release", response_model=OutcomePublic)
async def release(
    conversation_id: uuid.UUID, runtime: RuntimeDep, principal: StaffDep
) -> OutcomePublic:
    """Give a claimed conversation back to the queue."""
    outcome = await runtime.handoff.release(principal, conversation_id)
    await audit(runtime, principal, "conversation.release", f"conversation:{conversation_id}")
    return _outcome(outcome)


@router.post("/conversations/{conversation_id}/transfer", response_model=OutcomePublic)
async def transfer(
    conversation_id: uuid.UUID, body: TransferBody, runtime: RuntimeDep, principal: StaffDep
) -> OutcomePublic:
    """Hand the conversation to another agent or another team's queue."""
    outcome = await runtime.handoff.transfer(
        principal, conversation_id, agent_id=body.agent_id, team_id=body.team_id
    )
    await audit(runtime, principal, "conversation.transfer", f"conversation:{conversation_id}",
                agent_id=_str(body.agent_id), team_id=_str(body.team_id))
    return _outcome(outcome)


@router.post("/conversations/{conversation_id}/assign", response_model=OutcomePublic)
async def assign(
    conversation_id: uuid.UUID, body: AssignBody, runtime: RuntimeDep, principal: SupervisorDep
) -> OutcomePublic:
    """Supervisors: reassign a queued or claimed conversation to an agent."""
    outcome = await runtime.handoff.reassign(principal, conversation_id, body.agent_id)
    await audit(runtime, principal, "conversation.assign", f"conversation:{conversation_id}",
                agent_id=str(body.agent_id))
    return _outcome(outcome)


@router.post("/conversations/{conversation_id}/notes", status_code=201)
async def add_note(
    conversation_id: uuid.UUID, body: TextBody, runtime: RuntimeDep, principal: StaffDep
) -> dict[str, uuid.UUID]:
    """An internal note (never sent to the customer)."""
    note_id = await runtime.handoff.add_note(principal, conversation_id, body.text)
    await audit(runtime, principal, "conversation.note", f"conversation:{conversation_id}",
                note_id=str(note_id))
    return {"id": note_id}


@router.put("/conversations/{conversation_id}/labels")
async def set_labels(
    conversation_id: uuid.UUID, body: LabelsBody, runtime: RuntimeDep, principal: StaffDep
) -> dict[str, list[str]]:
    labels = await runtime.handoff.set_labels(principal, conversation_id, body.labels)
    await audit(runtime, principal, "conversation.labels", f"conversation:{conversation_id}",
                labels=labels)
    return {"labels": labels}


class EventStreamResponse(StreamingResponse):
    """A server-sent-events stream (declared as ``text/event-stream`` in the schema)."""

    media_type = "text/event-stream"


_EVENT_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events: `event: conversation|agents`, JSON `data`.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
}


@router.get("/inbox/stream", response_class=EventStreamResponse, responses=_EVENT_STREAM_DOC)
async def stream(request: Request, runtime: RuntimeDep, principal: StaffDep) -> Response:
    """Server-sent events: ids of conversations that changed (the page re-reads them).

    Events travel over Redis pub/sub, so every app process sees every change.
    """

    async def events() -> AsyncIterator[str]:
        async with runtime.events.subscribe("conversations", "agents") as queue:
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                kind = "agents" if "online" in event else "conversation"
                if kind == "conversation" and not await _may_see(runtime, principal, event):
                    continue  # another team's ids are not this agent's business
                safe = {k: v for k, v in event.items() if k in _EVENT_KEYS}
                yield f"event: {kind}\ndata: {json.dumps(safe)}\n\n"

    return EventStreamResponse(
        events(),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _may_see(runtime: Runtime, principal: Principal, event: dict[str, Any]) -> bool:
    if principal.role is not Role.AGENT:
        return True
    try:
        conversation_id = uuid.UUID(str(event.get("conversation_id")))
    except ValueError:
        return False
    return await runtime.handoff.may_see(principal, conversation_id)


_EVENT_KEYS = {"conversation_id", "owner", "kind", "message_id", "agent_id", "online"}
