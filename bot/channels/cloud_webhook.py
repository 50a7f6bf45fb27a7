"""WhatsApp Cloud API webhooks: verify, parse Meta's payloads, store, then acknowledge.

The order is the contract: the signature (HMAC-SHA256 of the raw body with the app
secret) is checked before anything is parsed; every message is stored (idempotent
on its WhatsApp id) and every status applied before the handler answers 200, so Meta
redelivers anything we did not keep. Unknown message types are stored as
``MessageKind.UNKNOWN`` with their raw JSON (never dropped).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from bot.channels.cloud_api import CLOUD_CHANNEL
from bot.channels.receipts import DeliveryStatus, Receipt, ReceiptRecorder
from bot.clock import Clock
from bot.conversation.ingest import Ingestor
from bot.errors import AtiendeError, InvalidPhoneNumber, InvalidWebhook
from bot.logs import get_logger
from bot.messages import InboundMessage, MediaRef, MessageKind
from bot.phones import normalize_phone

log = get_logger("atiende.cloud_webhook")

MAX_TEXT = 4096
MediaFetcher = Callable[[MediaRef, MessageKind], Awaitable[MediaRef]]
_MEDIA_KINDS = {
    "audio": MessageKind.VOICE,
    "voice": MessageKind.VOICE,
    "image": MessageKind.IMAGE,
    "document": MessageKind.DOCUMENT,
}


class SignatureCheck(enum.Enum):
    OK = "ok"
    MISSING = "missing"  # 401
    INVALID = "invalid"  # 403


def check_signature(app_secret: str, raw_body: bytes, header: str | None) -> SignatureCheck:
    """Compare ``X-Hub-Signature-256`` (``sha256=<hex>``) with our HMAC of the raw body."""
    if not header or not header.startswith("sha256="):
        return SignatureCheck.MISSING if not header else SignatureCheck.INVALID
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    given = header.removeprefix("sha256=").strip().lower()
    return SignatureCheck.OK if hmac.compare_digest(expected, given) else SignatureCheck.INVALID


@dataclass(frozen=True, slots=True)
class WebhookBatch:
    """One webhook delivery, parsed: customer messages and delivery statuses."""

    messages: tuple[InboundMessage, ...] = ()
    receipts: tuple[Receipt, ...] = ()


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    stored: int = 0
    duplicates: int = 0
    statuses: int = 0
    media_failed: int = 0
    message_ids: tuple[str, ...] = field(default_factory=tuple)


def parse_webhook(raw_body: bytes, *, default_region: str = "MX") -> WebhookBatch:
    """Meta's ``whatsapp_business_account`` payload → typed messages and receipts."""
    try:
        payload = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidWebhook(f"body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise InvalidWebhook("not a whatsapp_business_account webhook")
    messages: list[InboundMessage] = []
    receipts: list[Receipt] = []
    for entry in _list(payload, "entry"):
        for change in _list(entry, "changes"):
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                raise InvalidWebhook("change without a value object")
            account = str(_dict(value, "metadata").get("phone_number_id") or "")
            names = {
                str(c.get("wa_id")): (c.get("profile") or {}).get("name")
                for c in _list(value, "contacts")
                if isinstance(c, dict)
            }
            for item in _list(value, "messages"):
                messages.append(_message(item, account, names, default_region))
            for item in _list(value, "statuses"):
                receipt = _status(item)
                if receipt is not None:
                    receipts.append(receipt)
    return WebhookBatch(tuple(messages), tuple(receipts))


def _list(obj: Any, key: str) -> list[Any]:
    value = obj.get(key, []) if isinstance(obj, dict) else None
    if not isinstance(value, list):
        raise InvalidWebhook(f"{key!r} must be a list")
    return value


def _dict(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key, {})
    if not isinstance(value, dict):
        raise InvalidWebhook(f"{key!r} must be an object")
    return value


def _message(
    item: Any, account: str, names: dict[str, Any], region: str
) -> InboundMessage:
    if not isinstance(item, dict) or not item.get("id") or not item.get("from"):
        raise InvalidWebhook("message without id or from")
    try:
        sender = normalize_phone(str(item["from"]), region)
    except InvalidPhoneNumber as exc:
        raise InvalidWebhook(f"message {item['id']}: sender {exc.reason}") from exc
    kind, text, media = _content(item)
    if text is not None and len(text) > MAX_TEXT:
        text = text[:MAX_TEXT]
    name = names.get(str(item["from"]))
    return InboundMessage(
        channel=CLOUD_CHANNEL,
        account=account,
        provider_message_id=str(item["id"]),
        sender_phone=sender,
        sender_name=str(name)[:200] if name else None,
        kind=kind,
        text=text,
        media=media,
        received_at=_timestamp(item.get("timestamp")),
        raw={"cloud": item},
    )


def _content(item: dict[str, Any]) -> tuple[MessageKind, str | None, MediaRef | None]:
    kind = str(item.get("type") or "unknown")
    found = item.get(kind)
    body: dict[str, Any] = found if isinstance(found, dict) else {}
    if kind == "text":
        return MessageKind.TEXT, str(body.get("body") or ""), None
    if kind in _MEDIA_KINDS and body.get("id"):
        media = MediaRef(
            mime_type=str(body.get("mime_type") or "application/octet-stream"),
            sha256=body.get("sha256"),
            filename=body.get("filename"),
            provider_media_id=str(body["id"]),
        )
        caption = body.get("caption")
        return _MEDIA_KINDS[kind], str(caption) if caption else None, media
    if kind == "interactive":
        reply = body.get(str(body.get("type") or ""))
        if isinstance(reply, dict) and reply.get("title"):
            return MessageKind.TEXT, str(reply["title"]), None
    if kind == "button" and body.get("text"):
        return MessageKind.TEXT, str(body["text"]), None
    return MessageKind.UNKNOWN, None, None


def _timestamp(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


_STATUSES = {s.value: s for s in DeliveryStatus}


def _status(item: Any) -> Receipt | None:
    if not isinstance(item, dict) or not item.get("id"):
        raise InvalidWebhook("status without id")
    status = _STATUSES.get(str(item.get("status")))
    if status is None:
        log.info("cloud.status_ignored", wamid=item.get("id"), status=item.get("status"))
        return None  # e.g. "deleted", "warning": nothing to move
    error = None
    if status is DeliveryStatus.FAILED:
        found = item.get("errors")
        errors: list[Any] = found if isinstance(found, list) else []
        error = "; ".join(
            f"{e.get('code')} {e.get('title', '')}: "
            f"{(e.get('error_data') or {}).get('details') or e.get('message', '')}".strip()
            for e in errors
            if isinstance(e, dict)
        ) or "failed (no reason given)"
    return Receipt(
        channel=CLOUD_CHANNEL, provider_message_ids=(str(item["id"]),), status=status,
        at=_timestamp(item.get("timestamp")), error=error,
    )


class CloudWebhook:
    """Verifies and stores Cloud API webhook deliveries (the route only calls this)."""

    def __init__(
        self,
        *,
        verify_token: str | None,
        app_secret: str | None,
        ingestor: Ingestor,
        receipts: ReceiptRecorder,
        clock: Clock,
        default_region: str = "MX",
        fetch_media: MediaFetcher | None = None,
    ) -> None:
        self._verify_token = verify_token
        self._secret = app_secret
        self._ingestor = ingestor
        self._receipts = receipts
        self._clock = clock
        self._region = default_region
        self._fetch_media = fetch_media

    def challenge(self, mode: str | None, token: str | None, challenge: str | None) -> str | None:
        """Meta's subscription check: the challenge back when the token matches, else None."""
        if (
            mode == "subscribe"
            and self._verify_token
            and token is not None
            and challenge is not None
            and hmac.compare_digest(token.encode(), self._verify_token.encode())
        ):
            return challenge
        return None

    def verify(self, raw_body: bytes, signature: str | None) -> SignatureCheck:
        if not self._secret:
            return SignatureCheck.INVALID  # refuse everything until an app secret is set
        return check_signature(self._secret, raw_body, signature)

    async def receive(self, raw_body: bytes) -> WebhookOutcome:
        """Store every message and apply every status of an already verified body."""
        batch = parse_webhook(raw_body, default_region=self._region)
        stored = duplicates = media_failed = 0
        ids: list[str] = []
        for message in batch.messages:
            message, failed = await self._with_media(message)
            media_failed += failed
            accepted = await self._ingestor.accept(message)
            duplicates += accepted.duplicate
            stored += not accepted.duplicate
            ids.append(str(accepted.message_id))
        statuses = await self._receipts.record_many(batch.receipts)
        return WebhookOutcome(stored, duplicates, statuses, media_failed, tuple(ids))

    async def _with_media(self, message: InboundMessage) -> tuple[InboundMessage, int]:
        """Download media into our store; on failure keep the message with the Meta id."""
        if message.media is None or self._fetch_media is None:
            return message, 0
        try:
            media = await self._fetch_media(message.media, message.kind)
        except AtiendeError as exc:
            log.warning(
                "cloud.media_failed", wamid=message.provider_message_id,
                media_id=message.media.provider_media_id, error=str(exc),
            )
            raw = {**message.raw, "media_error": str(exc)[:500]}
            return replace(message, raw=raw), 1
        return replace(message, media=media), 0
