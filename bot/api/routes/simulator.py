"""The simulator channel over HTTP (what ``atiende ask`` and the web chat use)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from bot.api.deps import RuntimeDep
from bot.channels.simulation import SimulatorService
from bot.wiring.runtime import Runtime

DEMO_PHONE = "+5215512345678"

router = APIRouter(prefix="/api/v1/simulator", tags=["simulator"])
pages = APIRouter(include_in_schema=False)


class SimulatorMessageCreate(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_: str = Field(default=DEMO_PHONE, alias="from", min_length=3, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    text: str = Field(min_length=1, max_length=4096)
    message_id: str | None = Field(
        default=None, min_length=1, max_length=128,
        description="provider message id; the same id delivered twice is stored once",
    )


class SimulatorAccepted(BaseModel):
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    duplicate: bool


class SimulatorOutcome(BaseModel):
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    status: str
    transcript: str | None
    intent: str | None
    confidence: float | None
    escalated: bool
    owner: str
    replies: list[str]
    sources: list[str]


class ChatLinePublic(BaseModel):
    seq: int
    id: uuid.UUID
    direction: str
    author: str
    text: str | None
    status: str
    kind: str = "text"


def get_simulator(runtime: RuntimeDep) -> SimulatorService:
    return simulator_service(runtime)


def simulator_service(runtime: Runtime) -> SimulatorService:
    return SimulatorService(
        sessions=runtime.sessions, ingestor=runtime.ingestor, events=runtime.events,
        clock=runtime.clock, default_region=runtime.settings.default_region,
        media=runtime.media,
    )


SimulatorDep = Annotated[SimulatorService, Depends(get_simulator)]


@router.post("/messages", status_code=202, response_model=SimulatorAccepted)
async def post_message(body: SimulatorMessageCreate, sim: SimulatorDep) -> SimulatorAccepted:
    """Deliver one customer text, as WhatsApp would; answered after it is stored."""
    accepted = await sim.send(
        phone=body.from_, text=body.text, name=body.name, message_id=body.message_id
    )
    return SimulatorAccepted(
        conversation_id=accepted.conversation_id, message_id=accepted.message_id,
        duplicate=accepted.duplicate,
    )


@router.post("/voice", status_code=202, response_model=SimulatorAccepted)
async def post_voice(
    sim: SimulatorDep,
    audio: Annotated[UploadFile, File(description="the voice note (ogg/opus, mp3, m4a, wav…)")],
    from_: Annotated[str, Form(alias="from", min_length=3, max_length=40)] = DEMO_PHONE,
    name: Annotated[str | None, Form(max_length=200)] = None,
    message_id: Annotated[str | None, Form(min_length=1, max_length=128)] = None,
) -> SimulatorAccepted:
    """Deliver one customer voice note; its transcript shows in the message's outcome."""
    accepted = await sim.send_voice(
        phone=from_, audio=_chunks(audio), mime_type=audio.content_type or "",
        filename=audio.filename, name=name, message_id=message_id,
    )
    return SimulatorAccepted(
        conversation_id=accepted.conversation_id, message_id=accepted.message_id,
        duplicate=accepted.duplicate,
    )


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(256 * 1024):
        yield chunk


@router.get("/messages/{message_id}", response_model=SimulatorOutcome)
async def get_outcome(
    message_id: uuid.UUID, sim: SimulatorDep, wait: Annotated[float, Query(ge=0, le=60)] = 0
) -> SimulatorOutcome:
    """What the pipeline did with a message; ``wait`` blocks until it is processed."""
    outcome = await sim.outcome(message_id, wait=wait)
    return SimulatorOutcome.model_validate(outcome, from_attributes=True)


@router.get("/conversations/{phone}", response_model=list[ChatLinePublic])
async def get_chat(
    phone: str, sim: SimulatorDep, after: Annotated[int, Query(ge=0)] = 0
) -> list[ChatLinePublic]:
    """The conversation as the customer's phone shows it (for the web chat)."""
    return [
        ChatLinePublic(seq=seq, **{k: getattr(line, k) for k in line.__slots__})
        for seq, line in await sim.chat(phone, after_seq=after)
    ]


@pages.get("/simulator", response_class=HTMLResponse)
async def simulator_page(request: Request) -> HTMLResponse:
    templates = request.app.state.templates
    return templates.TemplateResponse(  # type: ignore[no-any-return]
        request, "simulator.html", {"demo_phone": DEMO_PHONE}
    )
