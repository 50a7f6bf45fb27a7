"""Staff administration API: presence, agents, teams and skills, canned replies, users,
and the handoff settings. Admins manage; agents and supervisors read what they need.
Every handler: parse, call one service, return.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from bot.api.auth import AdminDep, StaffDep, SupervisorDep, audit
from bot.api.deps import RuntimeDep
from handoff.auth import UnknownUser
from handoff.roles import Role

router = APIRouter(prefix="/api/v1", tags=["staff"])


class PresenceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    online: bool
    capacity: int | None = Field(default=None, ge=1, le=100)


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    skills: list[str] = Field(default_factory=list, max_length=50)


class TeamUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=100)
    skills: list[str] | None = Field(default=None, max_length=50)


class MembersBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_ids: list[uuid.UUID] = Field(max_length=500)


class CannedCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shortcut: str = Field(min_length=1, max_length=40)
    text: str = Field(min_length=1, max_length=4096)
    language: str = Field(default="es", pattern="^(es|en)$")


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=200)
    role: Role
    password: str = Field(min_length=8, max_length=200)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: bool | None = None
    role: Role | None = None


class TeamPublic(BaseModel):
    id: uuid.UUID
    name: str
    skills: list[str]
    members: list[uuid.UUID]


class AgentPublic(BaseModel):
    id: uuid.UUID
    name: str
    email: str | None = Field(default=None, description="supervisors and admins only")
    role: str
    online: bool
    capacity: int
    load: int
    active: bool


class CannedPublic(BaseModel):
    id: uuid.UUID
    shortcut: str
    text: str
    language: str


class UserPublic(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: str
    active: bool = True


@router.post("/agents/me/presence", status_code=204)
async def set_presence(body: PresenceBody, runtime: RuntimeDep, principal: StaffDep) -> Response:
    """Go online (the unassigned backlog is swept to you) or offline."""
    await runtime.handoff.set_presence(principal, online=body.online, capacity=body.capacity)
    return Response(status_code=204)


@router.get("/agents", response_model=list[AgentPublic])
async def list_agents(runtime: RuntimeDep, principal: StaffDep) -> list[AgentPublic]:
    """Staff with presence and current load (agents use it to pick a transfer target);
    agents see other staff's names, not their e-mails."""
    agents = [AgentPublic.model_validate(asdict(a)) for a in await runtime.inbox.agents()]
    if principal.role is Role.AGENT:
        for agent in agents:
            agent.email = None
    return agents


@router.get("/teams", response_model=list[TeamPublic])
async def list_teams(runtime: RuntimeDep, principal: StaffDep) -> list[TeamPublic]:
    return [TeamPublic.model_validate(asdict(t)) for t in await runtime.inbox.teams()]


@router.post("/teams", status_code=201, response_model=TeamPublic)
async def create_team(body: TeamCreate, runtime: RuntimeDep, principal: AdminDep) -> TeamPublic:
    """Admins: a team/queue with skills (e.g. siniestros, ventas, cobranza)."""
    team = await runtime.inbox.create_team(body.name, body.skills)
    await audit(runtime, principal, "team.create", f"team:{team.id}", name=team.name)
    return TeamPublic.model_validate(asdict(team))


@router.patch("/teams/{team_id}", response_model=TeamPublic)
async def update_team(
    team_id: uuid.UUID, body: TeamUpdate, runtime: RuntimeDep, principal: AdminDep
) -> TeamPublic:
    """Admins: rename a team or replace its skills."""
    await runtime.workspace.update_team(team_id, name=body.name, skills=body.skills)
    await audit(runtime, principal, "team.update", f"team:{team_id}",
                **body.model_dump(exclude_none=True))
    team = next(t for t in await runtime.inbox.teams() if t.id == team_id)
    return TeamPublic.model_validate(asdict(team))


@router.put("/teams/{team_id}/members", status_code=204)
async def set_members(
    team_id: uuid.UUID, body: MembersBody, runtime: RuntimeDep, principal: AdminDep
) -> Response:
    await runtime.inbox.set_members(team_id, body.user_ids)
    await audit(runtime, principal, "team.members", f"team:{team_id}",
                user_ids=[str(u) for u in body.user_ids])
    await runtime.handoff.sweep()
    return Response(status_code=204)


@router.get("/canned-responses", response_model=list[CannedPublic])
async def list_canned(runtime: RuntimeDep, principal: StaffDep) -> list[CannedPublic]:
    return [CannedPublic.model_validate(asdict(c)) for c in await runtime.inbox.canned()]


@router.post("/canned-responses", status_code=201, response_model=CannedPublic)
async def add_canned(
    body: CannedCreate, runtime: RuntimeDep, principal: SupervisorDep
) -> CannedPublic:
    canned = await runtime.inbox.add_canned(body.shortcut, body.text, body.language)
    await audit(runtime, principal, "canned.create", f"canned:{canned.id}",
                shortcut=canned.shortcut)
    return CannedPublic.model_validate(asdict(canned))


@router.delete("/canned-responses/{canned_id}", status_code=204)
async def delete_canned(
    canned_id: uuid.UUID, runtime: RuntimeDep, principal: SupervisorDep
) -> Response:
    if not await runtime.inbox.delete_canned(canned_id):
        return Response(status_code=404)
    await audit(runtime, principal, "canned.delete", f"canned:{canned_id}")
    return Response(status_code=204)


@router.get("/users", response_model=list[UserPublic])
async def list_users(runtime: RuntimeDep, principal: AdminDep) -> list[UserPublic]:
    """Admins: every staff account."""
    return [
        UserPublic(id=a.id, email=a.email, name=a.name, role=a.role, active=a.active)
        for a in await runtime.inbox.agents(include_inactive=True)
    ]


@router.post("/users", status_code=201, response_model=UserPublic)
async def create_user(body: UserCreate, runtime: RuntimeDep, principal: AdminDep) -> UserPublic:
    """Admins: create a staff account (same rules as ``atiende users create``)."""
    user = await runtime.auth.create_user(
        email=body.email, name=body.name, role=body.role, password=body.password
    )
    await audit(runtime, principal, "users.create", f"user:{user.id}", email=user.email,
                role=user.role.value)
    return UserPublic(id=user.id, email=user.email, name=user.name, role=user.role.value)


@router.patch("/users/{user_id}", response_model=UserPublic)
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, runtime: RuntimeDep, principal: AdminDep
) -> UserPublic:
    """Admins: deactivate a staff account (its logins stop at once) or change its role."""
    user = await runtime.inbox.update_user(user_id, active=body.active, role=body.role)
    if body.active is False:
        await runtime.auth.revoke_sessions(user_id)  # logged out everywhere, at once
    changes = body.model_dump(exclude_none=True, mode="json")
    await audit(runtime, principal, "users.update", f"user:{user_id}", **changes)
    return UserPublic(id=user.id, email=user.email, name=user.name, role=user.role,
                      active=user.active)


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=8, max_length=200)


@router.post("/users/{user_id}/password", status_code=204)
async def reset_password(
    user_id: uuid.UUID, body: PasswordReset, runtime: RuntimeDep, principal: AdminDep
) -> Response:
    """Admins: set a staff member's password; all their sessions are revoked."""
    try:
        revoked = await runtime.auth.reset_password(user_id, new=body.password)
    except UnknownUser as exc:
        raise HTTPException(404, "no such user") from exc
    await audit(runtime, principal, "users.password_reset", f"user:{user_id}",
                sessions_revoked=revoked)
    return Response(status_code=204)


@router.get("/handoff/settings")
async def handoff_settings(runtime: RuntimeDep, principal: AdminDep) -> dict[str, Any]:
    """Admins: the handoff configuration in force (set through ``ATIENDE_HANDOFF__*``)."""
    return runtime.settings.handoff.model_dump()


# ---------------------------------------------------------------- pages
