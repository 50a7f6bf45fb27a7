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

router = APIRouter(prefix="/api/v1/admin/audit", tags=["admin"])
pages = APIRouter(include_in_schema=False)
AdminPage = Annotated[Principal, Depends(require_page_role(Role.ADMIN))]

LABELS: dict[str, dict[str, str]] = {
    "es": {"title": "Registro de auditoría", "action": "Acción (p. ej. kb.* o auth.login)",
           "since": "Desde", "until": "Hasta", "apply": "Filtrar", "at": "Fecha (UTC)",
           "actor": "Quién", "target": "Sobre", "details": "Detalles", "client": "Cliente",
           "none": "Sin acciones con estos filtros", "older": "Más antiguas"},
    "en": {"title": "Audit log", "action": "Action (e.g. kb.* or auth.login)",
           "since": "Since", "until": "Until", "apply": "Filter", "at": "When (UTC)",
           "actor": "Who", "target": "On", "details": "Details", "client": "Client",
           "none": "No actions match these filters", "older": "Older"},
}


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
    lang: Annotated[Literal["es", "en"], Query()] = "es",
) -> HTMLResponse:
    """The same entries as the API, filtered, 100 per page (every value escaped)."""
    entries = await runtime.audit.entries(
        since=since, until=until, action=action or None, before_id=before_id, limit=100
    )
    query = {"action": action or "", "since": since.isoformat() if since else "",
             "until": until.isoformat() if until else "", "lang": lang}
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, "audit.html",
        {"entries": entries, "L": LABELS[lang], "lang": lang, "q": query, "user": admin},
    )
