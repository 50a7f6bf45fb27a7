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

import phonenumbers

from bot.channels.delivery import DeliveryStatus
from bot.errors import InvalidPhoneNumber
from bot.messages import MessageKind
from bot.phones import normalize_phone

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
    NEEDS_LINK = "needs_link"  # the stored device is unusable (not in the store, another
    # number's): the JID was cleared; a new link (QR or pairing code) is needed
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
class DeviceJid:
    """A linked device as whatsmeow names it: ``user[:device]@server``."""

    user: str
    device: int
    server: str

    @classmethod
    def parse(cls, text: str) -> DeviceJid:
        address, _, server = text.strip().partition("@")
        user, _, device = address.partition(":")
        user = user.split(".", 1)[0]  # an agent suffix (``user.agent:device``) is not the phone
        return cls(user, int(device) if device.isdigit() else 0, server or "s.whatsapp.net")

    def __str__(self) -> str:
        device = f":{self.device}" if self.device else ""
        return f"{self.user}{device}@{self.server}"


def foreign_device(jid: str, account: str, region: str = "MX") -> str | None:
    """Whose phone ``jid`` (a linked device) is, when it is NOT ``account``; else None.

    Numbers are compared in E.164; the same country code and last 8 digits also match, so a
    mobile prefix WhatsApp adds or drops (Argentina's 9, Mexico's old 1) is not a mismatch.
    A device that is not a phone JID (no digits to compare) is taken as foreign.
    """
    device = DeviceJid.parse(jid)
    if device.server != "s.whatsapp.net":
        return str(device)
    try:
        owner = normalize_phone(device.user, region)
    except InvalidPhoneNumber:
        return str(device)
    if owner == account:
        return None
    try:
        ours = phonenumbers.parse(account)
        theirs = phonenumbers.parse(owner)
    except phonenumbers.NumberParseException:
        return owner
    if ours.country_code == theirs.country_code and (
        str(ours.national_number)[-8:] == str(theirs.national_number)[-8:]
    ):
        return None
    return owner


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
