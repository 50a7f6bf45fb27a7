"""Outgoing webhooks: subscriptions, signed deliveries retried by the job queue, the log.

Triggers (migration ``prod_0001``) write one delivery row per event and subscription in
the same transaction as the change, and queue its job there too. The job POSTs the
event's JSON with ``X-Atiende-Signature-256: sha256=<hex HMAC-SHA256 of the raw body
with the subscription's secret>``; a failed attempt raises, and the job queue retries it
with exponential backoff until ``ATIENDE_WEBHOOKS_MAX_ATTEMPTS``. Redirects are never
followed. Admins read the log and replay a delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.errors import NotFound, WebhookDeliveryFailed, WebhookTargetRefused
from bot.integrations.records import Webhook, WebhookDelivery
from bot.integrations.targets import Resolver, check_target, system_resolver
from bot.logs import get_logger

log = get_logger("atiende.webhooks")

EVENTS = (
    "message.created", "conversation.escalated", "conversation.claimed",
    "conversation.resolved",
)
SIGNATURE_HEADER = "X-Atiende-Signature-256"


def signature(secret: str, body: bytes) -> str:
    """The header value a receiver recomputes to trust a delivery."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class SecretBox:
    """Webhook secrets at rest: Fernet with a key derived from ATIENDE_SECRET_KEY."""

    def __init__(self, secret_key: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"atiende",
                       info=b"webhook-secrets").derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, value: str) -> str:
        return "fernet:" + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str) -> str:
        try:
            return self._fernet.decrypt(value.removeprefix("fernet:").encode()).decode()
        except InvalidToken as exc:
            raise WebhookDeliveryFailed(
                "the webhook secret cannot be decrypted (ATIENDE_SECRET_KEY changed?)"
            ) from exc


@dataclass(frozen=True, slots=True)
class WebhookView:
    id: uuid.UUID
    url: str
    events: list[str]
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryView:
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


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST came to."""

    delivered: bool
    retry: bool
    status_code: int | None = None
    error: str | None = None


def _webhook_view(row: Webhook) -> WebhookView:
    return WebhookView(row.id, row.url, list(row.events), row.active, row.created_at)


def _delivery_view(row: WebhookDelivery) -> DeliveryView:
    return DeliveryView(
        row.id, row.webhook_id, row.event, row.conversation_id, row.status, row.attempts,
        row.last_status_code, row.last_error, row.created_at, row.last_attempt_at,
        row.delivered_at, row.payload,
    )


class WebhookQueue(Protocol):
    """The part of the job queue webhooks use (``bot.infra.jobs.JobQueue``)."""

    async def defer_webhook(self, delivery_id: int) -> None: ...


class WebhookService:
    """Subscribe, list, read the delivery log, replay; and deliver (the job's handler)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        http: httpx.AsyncClient,
        jobs: WebhookQueue,
        secret_key: str,
        allow_private: bool,
        timeout_seconds: float,
        clock: Clock,
        resolve: Resolver = system_resolver,
    ) -> None:
        self._sessions = sessions
        self._http = http
        self._jobs = jobs
        self._box = SecretBox(secret_key)
        self._allow_private = allow_private
        self._timeout = timeout_seconds
        self._clock = clock
        self._resolve = resolve

    async def subscribe(
        self, *, url: str, events: list[str], secret: str, created_by: str | None
    ) -> WebhookView:
        """Check the URL (resolved, before any connection) and store the subscription."""
        unknown = sorted(set(events) - set(EVENTS))
        if unknown or not events:
            raise WebhookTargetRefused(url, f"unknown or no events {unknown}; known: "
                                       f"{', '.join(EVENTS)}")
        await check_target(url, allow_private=self._allow_private, resolve=self._resolve)
        row = Webhook(id=uuid.uuid4(), url=url, events=sorted(set(events)),
                      secret=self._box.seal(secret), created_by=created_by,
                      created_at=self._clock())
        async with self._sessions() as session, session.begin():
            session.add(row)
        log.info("webhook.subscribed", webhook_id=str(row.id), url=url, events=row.events)
        return _webhook_view(row)

    async def subscriptions(self) -> list[WebhookView]:
        async with self._sessions() as session:
            rows = (await session.execute(select(Webhook).order_by(Webhook.created_at))).scalars()
            return [_webhook_view(r) for r in rows]

    async def remove(self, webhook_id: uuid.UUID) -> None:
        """Stop sending to it (the delivery log is kept)."""
        async with self._sessions() as session, session.begin():
            done = await session.execute(
                update(Webhook).where(Webhook.id == webhook_id, Webhook.active)
                .values(active=False).returning(Webhook.id)
            )
            if done.scalar_one_or_none() is None:
                raise NotFound(f"webhook {webhook_id} not found")

    async def deliveries(
        self, webhook_id: uuid.UUID, *, limit: int = 50, before_id: int | None = None,
        status: str | None = None,
    ) -> list[DeliveryView]:
        """The delivery log of one subscription, newest first."""
        query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        if before_id is not None:
            query = query.where(WebhookDelivery.id < before_id)
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        async with self._sessions() as session:
            rows = (await session.execute(
                query.order_by(WebhookDelivery.id.desc()).limit(limit))).scalars()
            return [_delivery_view(r) for r in rows]

    async def replay(self, delivery_id: int) -> DeliveryView:
        """Send a delivery again (an admin's decision), whatever became of it."""
        async with self._sessions() as session, session.begin():
            row = (await session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                .values(status="pending").returning(WebhookDelivery)
            )).scalar_one_or_none()
            if row is None:
                raise NotFound(f"delivery {delivery_id} not found")
        await self._jobs.defer_webhook(delivery_id)
        log.info("webhook.replayed", delivery_id=delivery_id)
        return _delivery_view(row)

    async def deliver(self, delivery_id: int, last_try: bool) -> None:
        """One attempt. Raises :class:`WebhookDeliveryFailed` when it should be retried."""
        async with self._sessions() as session, session.begin():
            found = (await session.execute(
                select(WebhookDelivery, Webhook)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending")
                .with_for_update(of=WebhookDelivery, skip_locked=True)
            )).one_or_none()
            if found is None:
                return  # delivered, given up, or another worker holds it right now
            delivery, webhook = found
            if not webhook.active:
                outcome = Attempt(False, False, error="the subscription was removed")
            else:
                outcome = await self._post(delivery, webhook)
            final = outcome.delivered or not outcome.retry or last_try
            now = self._clock()
            await session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(
                    attempts=WebhookDelivery.attempts + 1, last_attempt_at=now,
                    last_status_code=outcome.status_code, last_error=outcome.error,
                    status="delivered" if outcome.delivered else ("failed" if final else "pending"),
                    delivered_at=now if outcome.delivered else None,
                )
            )
        log.info("webhook.attempt", delivery_id=delivery_id, webhook_id=str(webhook.id),
                 webhook_event=delivery.event, delivered=outcome.delivered,
                 status_code=outcome.status_code, error=outcome.error, final=final)
        if not final:
            raise WebhookDeliveryFailed(f"delivery {delivery_id}: {outcome.error}")

    async def _post(self, delivery: WebhookDelivery, webhook: Webhook) -> Attempt:
        body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            target = await check_target(webhook.url, allow_private=self._allow_private,
                                        resolve=self._resolve)
        except WebhookTargetRefused as exc:
            return Attempt(False, retry=False, error=f"refused: {exc.reason}")
        headers = {
            "content-type": "application/json", "user-agent": "Atiende-Webhooks/1",
            "host": target.host if target.port in (80, 443) else f"{target.host}:{target.port}",
            SIGNATURE_HEADER: signature(self._box.open(webhook.secret), body),
            "X-Atiende-Event": delivery.event, "X-Atiende-Delivery": str(delivery.id),
        }
        extensions = {"sni_hostname": target.host} if target.tls else {}
        try:
            response = await self._http.post(
                target.connect_url, content=body, headers=headers, timeout=self._timeout,
                follow_redirects=False, extensions=extensions,
            )
        except httpx.HTTPError as exc:
            return Attempt(False, retry=True, error=f"{type(exc).__name__}: {exc}"[:500])
        code = response.status_code
        if 200 <= code < 300:
            return Attempt(True, retry=False, status_code=code)
        if 300 <= code < 400:
            where = response.headers.get("location", "")[:300]
            return Attempt(False, retry=False, status_code=code,
                           error=f"redirects are not followed (to {where})")
        return Attempt(False, retry=True, status_code=code, error=f"HTTP {code}")
