"""The audit log, for admins: who did what, newest first (JSON, and a page)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from bot.api.auth import AdminDep, Principal, Role, require_page_role
from bot.api.deps import RuntimeDep
from bot.api.pages import render, request_lang

router = APIRouter(prefix="/api/v1/admin/audit", tags=["admin"])
pages = APIRouter(include_in_schema=False)
AdminPage = Annotated[Principal, Depends(require_page_role(Role.ADMIN))]

class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    actor_kind: str
    actor_id: uuid.UUID | None
    actor_email: str | None
    actor_role: str | None
    action: str
    target: str | None
    details: dict[str, Any]
    client: str | None


@router.get("", response_model=list[AuditEntryPublic])
async def list_audit(
    runtime: RuntimeDep,
    admin: AdminDep,
    since: datetime | None = None,
    until: datetime | None = None,
    action: Annotated[str | None, Query(max_length=64, description="exact, or `auth.*`")] = None,
    actor_id: uuid.UUID | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEntryPublic]:
    """Audit entries matching the filters; page with ``before_id`` = the last id seen."""
    entries = await runtime.audit.entries(
        since=since, until=until, action=action, actor_id=actor_id, before_id=before_id,
        limit=limit,
    )
    return [AuditEntryPublic.model_validate(e, from_attributes=True) for e in entries]


@pages.get("/admin/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request, runtime: RuntimeDep, admin: AdminPage,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None, until: datetime | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    lang: Annotated[Literal["es", "en"] | None, Query(description="overrides the page language")]
    = None,
) -> HTMLResponse:
    """The same entries as the API, filtered, 100 per page (every value escaped)."""
    entries = await runtime.audit.entries(
        since=since, until=until, action=action or None, before_id=before_id, limit=100
    )
    chosen = lang or request_lang(request)
    query = {"action": action or "", "since": since.isoformat() if since else "",
             "until": until.isoformat() if until else "", "lang": chosen}
    labels = request.app.state.texts.areas["audit"][chosen]
    return render(request, "audit.html", user=admin, title="nav.audit",
                  context={"entries": entries, "L": labels, "lang": chosen, "q": query})
