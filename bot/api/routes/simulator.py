"""The simulator channel over HTTP (what ``atiende ask`` and the web chat use).

Who may use it (``ATIENDE_SIMULATOR``): off means every path here answers 404; on in
production means a staff login (token, API key or session cookie) is required. A
message's outcome and a chat are read back only by staff or by the browser/CLI session
that sent it (the ``atiende_sim`` cookie, set on first use).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from bot.api.auth import LoginRequired, current_principal
from bot.api.deps import RuntimeDep
from bot.api.pages import render
from bot.channels.simulation import SimulatorService
from bot.wiring.runtime import Runtime
from handoff.auth import Principal

DEMO_PHONE = "+5215512345678"
SIM_COOKIE = "atiende_sim"

OptionalPrincipal = Annotated[Principal | None, Depends(current_principal)]


async def simulator_on(runtime: RuntimeDep, principal: OptionalPrincipal) -> None:
    """404 when the simulator is off; a staff login when it is on in production."""
    settings = runtime.settings
    if not settings.simulator_enabled:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
    if settings.env == "production" and principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "login required",
                            headers={"WWW-Authenticate": "Bearer"})


async def simulator_page_on(
    request: Request, runtime: RuntimeDep, principal: OptionalPrincipal
) -> None:
    settings = runtime.settings
    if not settings.simulator_enabled:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
    if settings.env == "production" and principal is None:
        raise LoginRequired(request.url.path)


router = APIRouter(
    prefix="/api/v1/simulator", tags=["simulator"], dependencies=[Depends(simulator_on)]
)
pages = APIRouter(include_in_schema=False, dependencies=[Depends(simulator_page_on)])


@dataclass(frozen=True, slots=True)
class SimCaller:
    """Who is using the simulator: its session (a digest of the cookie) and whether staff."""

    session: str
    principal: Principal | None

    @property
    def staff(self) -> bool:
        return self.principal is not None


def sim_caller(
    request: Request, response: Response, runtime: RuntimeDep, principal: OptionalPrincipal
) -> SimCaller:
    """The caller's simulator session, minted (and set as a cookie) on first use."""
    token = request.cookies.get(SIM_COOKIE)
    if not token or not 16 <= len(token) <= 100:
        token = secrets.token_urlsafe(24)
        response.set_cookie(SIM_COOKIE, token, httponly=True, samesite="strict",
                            secure=runtime.settings.env == "production")
    digest = hashlib.sha256(token.encode()).hexdigest()[:32]
    return SimCaller(session=digest, principal=principal)


CallerDep = Annotated[SimCaller, Depends(sim_caller)]


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
async def post_message(
    body: SimulatorMessageCreate, sim: SimulatorDep, caller: CallerDep
) -> SimulatorAccepted:
    """Deliver one customer text, as WhatsApp would; answered after it is stored."""
    accepted = await sim.send(
        phone=body.from_, text=body.text, name=body.name, message_id=body.message_id,
        session=caller.session,
    )
    return SimulatorAccepted(
        conversation_id=accepted.conversation_id, message_id=accepted.message_id,
        duplicate=accepted.duplicate,
    )


@router.post("/voice", status_code=202, response_model=SimulatorAccepted)
async def post_voice(
    sim: SimulatorDep,
    caller: CallerDep,
    audio: Annotated[UploadFile, File(description="the voice note (ogg/opus, mp3, m4a, wav…)")],
    from_: Annotated[str, Form(alias="from", min_length=3, max_length=40)] = DEMO_PHONE,
    name: Annotated[str | None, Form(max_length=200)] = None,
    message_id: Annotated[str | None, Form(min_length=1, max_length=128)] = None,
) -> SimulatorAccepted:
    """Deliver one customer voice note; its transcript shows in the message's outcome."""
    accepted = await sim.send_voice(
        phone=from_, audio=_chunks(audio), mime_type=audio.content_type or "",
        filename=audio.filename, name=name, message_id=message_id, session=caller.session,
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
    message_id: uuid.UUID, sim: SimulatorDep, caller: CallerDep,
    wait: Annotated[float, Query(ge=0, le=60)] = 0,
) -> SimulatorOutcome:
    """What the pipeline did with a message; ``wait`` blocks until it is processed.
    Staff read any simulator message; others only those their session sent (else 404)."""
    outcome = await sim.outcome(message_id, wait=wait, session=caller.session,
                                viewer=caller.principal)
    return SimulatorOutcome.model_validate(outcome, from_attributes=True)


@router.get("/conversations/{phone}", response_model=list[ChatLinePublic])
async def get_chat(
    phone: str, sim: SimulatorDep, caller: CallerDep, after: Annotated[int, Query(ge=0)] = 0
) -> list[ChatLinePublic]:
    """The conversation as the customer's phone shows it (for the web chat): staff, or a
    session that wrote in it; empty for anyone else."""
    return [
        ChatLinePublic(seq=seq, **{k: getattr(line, k) for k in line.__slots__})
        for seq, line in await sim.chat(
            phone, after_seq=after, session=caller.session, staff=caller.staff
        )
    ]


@pages.get("/simulator", response_class=HTMLResponse, dependencies=[Depends(sim_caller)])
async def simulator_page(request: Request, user: OptionalPrincipal) -> HTMLResponse:
    return render(request, "simulator.html", user=user, areas=("simulator",),
                  title="simulator.title", script="simulator",
                  context={"demo_phone": DEMO_PHONE})
