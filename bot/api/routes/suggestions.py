"""Knowledge suggestions: what agents answered when the bot could not, for admins to
approve into the knowledge base (supervisors read); agents mark their own replies."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from bot.api.auth import AdminDep, Principal, StaffDep, SupervisorDep, audit, require_page_role
from bot.api.deps import RuntimeDep
from bot.api.pages import render
from bot.reports.learning import LearningFigures
from handoff.roles import Role
from knowledge.suggestions import SuggestionView

router = APIRouter(prefix="/api/v1/knowledge/suggestions", tags=["knowledge suggestions"])
marking = APIRouter(prefix="/api/v1/conversations", tags=["knowledge suggestions"])
pages = APIRouter(include_in_schema=False)

Status = Literal["pending", "approved", "dismissed"]


class DraftPublic(BaseModel):
    title: str
    body: str
    source: Literal["llm", "replies"]
    model: str | None = None


class SuggestionPublic(BaseModel):
    id: uuid.UUID
    questions: list[str] = Field(description="what customers asked (masked), newest first")
    replies: list[str] = Field(description="what agents answered (masked)")
    count: int = Field(description="how many customers asked")
    status: Status
    items: int
    last_asked_at: datetime
    created_at: datetime
    masked: dict[str, int] = Field(
        description="what was masked, by kind (email, card, phone, policy, id, name)")
    draft: DraftPublic
    example_questions: list[str]
    article_id: str | None
    action: Literal["create", "extend"] | None
    decided_by: str | None
    decided_at: datetime | None


class ApproveBody(BaseModel):
    """``title`` + ``body``: a new article; ``article_id`` + ``body``: a new section of that
    article (``title``, if given, is the section's heading). ``questions`` replaces the
    example questions taken from the suggestion (customer wording, used by retrieval)."""

    model_config = ConfigDict(extra="forbid")
    body: str = Field(max_length=100_000)
    title: str | None = Field(default=None, max_length=300)
    article_id: str | None = Field(default=None, max_length=120)
    questions: list[Annotated[str, Field(max_length=300)]] | None = Field(
        default=None, max_length=40)


class ApprovedPublic(BaseModel):
    article_id: str
    created: bool
    version: int


class MarkedPublic(BaseModel):
    suggestion_id: uuid.UUID
    count: int


class FiguresPublic(BaseModel):
    start: date
    end: date
    gaps_closed: int = Field(description="suggestions approved in the period")
    pending: int = Field(description="suggestions waiting for an admin now")
    customers_waiting: int = Field(description="customers who asked what is pending now")
    dismissed: int
    answers: int = Field(description="customer messages answered from approved suggestions")
    customers_answered: int = Field(
        description="customers answered by articles that came from suggestions")


def _public(view: SuggestionView) -> SuggestionPublic:
    return SuggestionPublic(
        id=view.id, questions=list(view.questions), replies=list(view.replies),
        count=view.count, status=view.status, items=view.items,
        last_asked_at=view.last_asked_at, created_at=view.created_at, masked=view.masked,
        draft=DraftPublic(title=view.draft.title, body=view.draft.body,
                          source=view.draft.source,
                          model=view.draft.model),
        example_questions=list(view.example_questions), article_id=view.article_id,
        action=view.action, decided_by=view.decided_by,
        decided_at=view.decided_at,
    )


@router.get("")
async def list_suggestions(
    runtime: RuntimeDep, who: SupervisorDep, status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[SuggestionPublic]:
    """Suggestions, the most customers first, then the most recently asked."""
    return [_public(v) for v in await runtime.learning.list(status=status, limit=limit)]


@router.get("/figures")
async def figures(
    runtime: RuntimeDep, who: SupervisorDep, start: date | None = None, end: date | None = None,
) -> FiguresPublic:
    """Gaps closed and customers answered by articles that came from suggestions (the
    last 30 days unless given)."""
    result = await LearningFigures(runtime.sessions, runtime.settings.business_timezone
                                   ).figures(start, end, today=runtime.clock())
    return FiguresPublic.model_validate(result, from_attributes=True)


@router.get("/{suggestion_id}")
async def get_suggestion(suggestion_id: uuid.UUID, runtime: RuntimeDep, who: SupervisorDep
                         ) -> SuggestionPublic:
    return _public(await runtime.learning.get(suggestion_id))


@router.post("/{suggestion_id}/approve", responses={409: {"description": "already decided"}})
async def approve(suggestion_id: uuid.UUID, body: ApproveBody, runtime: RuntimeDep,
                  admin: AdminDep) -> ApprovedPublic:
    """Write it into the knowledge base: the running bot answers with it within seconds."""
    done = await runtime.learning.approve(
        admin, suggestion_id, body=body.body, title=body.title, article_id=body.article_id,
        questions=body.questions)
    await audit(runtime, admin, "kb.suggestion.approve", f"suggestion:{suggestion_id}",
                article_id=done.article_id, created=done.created)
    return ApprovedPublic(article_id=done.article_id, created=done.created, version=done.version)


@router.post("/{suggestion_id}/dismiss", responses={409: {"description": "already approved"}})
async def dismiss(suggestion_id: uuid.UUID, runtime: RuntimeDep, admin: AdminDep
                  ) -> SuggestionPublic:
    """Not for the knowledge base (dismissing twice is harmless)."""
    view = await runtime.learning.dismiss(admin, suggestion_id)
    await audit(runtime, admin, "kb.suggestion.dismiss", f"suggestion:{suggestion_id}")
    return _public(view)


@marking.post("/{conversation_id}/messages/{message_id}/suggestion",
              status_code=status.HTTP_201_CREATED)
async def mark_reply(conversation_id: uuid.UUID, message_id: uuid.UUID, runtime: RuntimeDep,
                     who: StaffDep) -> MarkedPublic:
    """"Add to the knowledge base": one of your replies, with the customer's question
    before it, becomes (part of) a suggestion."""
    view = await runtime.learning.mark(who, conversation_id, message_id)
    await audit(runtime, who, "kb.suggestion.mark", f"conversation:{conversation_id}",
                message_id=str(message_id), suggestion_id=str(view.id))
    return MarkedPublic(suggestion_id=view.id, count=view.count)


SuggestionsPage = Annotated[Principal, Depends(require_page_role(Role.ADMIN, Role.SUPERVISOR))]


@pages.get("/admin/kb/suggestions", response_class=HTMLResponse)
async def suggestions_page(request: Request, user: SuggestionsPage) -> HTMLResponse:
    """The suggestions, most asked first: edit, then approve or dismiss (admins)."""
    return render(request, "kb_suggestions.html", user=user, areas=("suggestions",),
                  title="suggestions.heading", script="kb_suggestions",
                  context={"can_decide": user.role is Role.ADMIN})
