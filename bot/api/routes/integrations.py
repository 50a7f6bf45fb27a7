"""Integrations (admins): API keys for other programs, and outgoing webhooks with their
delivery log. Every handler: parse, call one service, return."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from bot.api.auth import AdminDep, audit
from bot.api.deps import RuntimeDep
from handoff.roles import Role

router = APIRouter(prefix="/api/v1", tags=["integrations"])


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    role: Role


class ApiKeyPublic(BaseModel):
    id: uuid.UUID
    name: str
    role: str
    prefix: str
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="shown once: store it now")


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=2000)
    events: list[str] = Field(min_length=1, max_length=20)
    secret: str = Field(min_length=8, max_length=500)


class WebhookPublic(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    active: bool
    created_at: datetime


class DeliveryPublic(BaseModel):
    id: int
    webhook_id: uuid.UUID
    event: str
    conversation_id: uuid.UUID | None
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    payload: dict[str, Any]


@router.get("/apikeys", response_model=list[ApiKeyPublic])
async def list_keys(runtime: RuntimeDep, principal: AdminDep) -> list[ApiKeyPublic]:
    """Admins: every API key (never the key itself), with its last use."""
    return [ApiKeyPublic.model_validate(asdict(k)) for k in await runtime.api_keys.list()]


@router.post("/apikeys", status_code=201, response_model=ApiKeyCreated)
async def create_key(body: ApiKeyCreate, runtime: RuntimeDep, principal: AdminDep) -> ApiKeyCreated:
    """Admins: a new key acting with ``role``; the key is in this answer only."""
    created = await runtime.api_keys.create(name=body.name, role=body.role,
                                            created_by=principal.email)
    await audit(runtime, principal, "apikeys.create", f"apikey:{created.info.id}",
                name=created.info.name, role=created.info.role)
    return ApiKeyCreated(key=created.key, **asdict(created.info))


@router.delete("/apikeys/{key_id}", status_code=204)
async def revoke_key(key_id: uuid.UUID, runtime: RuntimeDep, principal: AdminDep) -> Response:
    """Admins: revoke a key; it stops working at once."""
    if await runtime.api_keys.revoke(str(key_id)) is None:
        raise HTTPException(404, "no such active API key")
    await audit(runtime, principal, "apikeys.revoke", f"apikey:{key_id}")
    return Response(status_code=204)


@router.post("/webhooks", status_code=201, response_model=WebhookPublic)
async def subscribe(body: WebhookCreate, runtime: RuntimeDep, principal: AdminDep) -> WebhookPublic:
    """Admins: subscribe a URL to events (``message.created``, ``conversation.escalated``,
    ``conversation.claimed``, ``conversation.resolved``); deliveries are signed with
    ``X-Atiende-Signature-256: sha256=<hex HMAC-SHA256 of the body with the secret>``."""
    hook = await runtime.webhooks.subscribe(url=body.url, events=body.events,
                                            secret=body.secret, created_by=principal.email)
    await audit(runtime, principal, "webhooks.create", f"webhook:{hook.id}", url=hook.url,
                events=hook.events)
    return WebhookPublic.model_validate(asdict(hook))


@router.get("/webhooks", response_model=list[WebhookPublic])
async def list_webhooks(runtime: RuntimeDep, principal: AdminDep) -> list[WebhookPublic]:
    return [WebhookPublic.model_validate(asdict(h)) for h in await runtime.webhooks.subscriptions()]


@router.delete("/webhooks/{webhook_id}", status_code=204)
async def unsubscribe(webhook_id: uuid.UUID, runtime: RuntimeDep, principal: AdminDep) -> Response:
    """Admins: stop a subscription (its delivery log stays readable)."""
    await runtime.webhooks.remove(webhook_id)
    await audit(runtime, principal, "webhooks.delete", f"webhook:{webhook_id}")
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=list[DeliveryPublic])
async def deliveries(
    webhook_id: uuid.UUID, runtime: RuntimeDep, principal: AdminDep,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|failed)$")] = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DeliveryPublic]:
    """Admins: the delivery log, newest first (attempts, last status, last error)."""
    found = await runtime.webhooks.deliveries(webhook_id, limit=limit, before_id=before_id,
                                              status=status)
    return [DeliveryPublic.model_validate(asdict(d)) for d in found]


@router.post("/webhooks/deliveries/{delivery_id}/replay", response_model=DeliveryPublic)
async def replay(delivery_id: int, runtime: RuntimeDep, principal: AdminDep) -> DeliveryPublic:
    """Admins: send a delivery again (e.g. after fixing the receiver)."""
    delivery = await runtime.webhooks.replay(delivery_id)
    await audit(runtime, principal, "webhooks.replay", f"webhook_delivery:{delivery_id}")
    return DeliveryPublic.model_validate(asdict(delivery))
