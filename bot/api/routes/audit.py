"""The audit log, for admins: who did what, newest first."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from bot.api.auth import AdminDep
from bot.api.deps import RuntimeDep

router = APIRouter(prefix="/api/v1/admin/audit", tags=["admin"])


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
