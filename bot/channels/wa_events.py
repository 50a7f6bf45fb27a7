"""What a WhatsApp multi-device session reports, in our own types (no protobuf here).

The neonize adapter turns whatsmeow events into these; the supervisor, the inbound
sink and the admin pages only ever see these.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.channels.receipts import DeliveryStatus
from bot.messages import MessageKind

WHATSAPP_CHANNEL = "whatsapp"


class ConnState(enum.StrEnum):
    """Health of one number's session (also the admin page's status)."""

    STOPPED = "stopped"
    CONNECTING = "connecting"
    PAIRING = "pairing"  # a QR or pairing code is waiting to be used
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # temporary: whatsmeow reconnects by itself
    RECONNECTING = "reconnecting"  # the supervisor restarts the session after a backoff
    STREAM_REPLACED = "stream_replaced"  # another client took the session: do not fight
    LOGGED_OUT = "logged_out"  # the phone unlinked us: a new link (QR) is needed
    TEMP_BANNED = "temp_banned"  # WhatsApp blocked the number until ``retry_at``
    FAILED = "failed"  # restart cap reached, or an unrecoverable failure
    STANDBY = "standby"  # another node owns this number (lease)


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """A change in one session's connection."""

    account: str
    state: ConnState
    detail: str | None = None
    retry_after: float | None = None  # seconds (temporary ban)
    qr: str | None = None  # the QR payload to render (PAIRING)
    jid: str | None = None  # the linked device, once known


@dataclass(frozen=True, slots=True)
class WaAddress:
    """Who wrote: a phone (E.164) and/or a WhatsApp LID (hidden-number id)."""

    phone: str | None
    lid: str | None


MediaDownload = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A chat message seen by a business number (from a customer, or typed on the phone)."""

    account: str
    message_id: str
    peer: WaAddress  # the customer (the chat), even when the owner typed it
    kind: MessageKind
    at: datetime
    text: str | None = None
    sender_name: str | None = None
    from_owner: bool = False
    mime_type: str | None = None
    filename: str | None = None
    download: MediaDownload | None = field(default=None, compare=False, repr=False)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IncomingReceipt:
    account: str
    message_ids: tuple[str, ...]
    status: DeliveryStatus
    at: datetime | None = None
