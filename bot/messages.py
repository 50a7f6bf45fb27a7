"""Channel-neutral, typed messages: what crosses the channel boundary.

Every channel adapter (simulator, neonize, Cloud API) turns what it receives
into an ``InboundMessage`` and sends ``OutboundMessage``s; nothing vendor-shaped
travels further in.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class MessageKind(enum.StrEnum):
    TEXT = "text"
    VOICE = "voice"
    IMAGE = "image"
    DOCUMENT = "document"
    UNKNOWN = "unknown"


class Author(enum.StrEnum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"
    OWNER_PHONE = "owner_phone"  # typed on the business phone itself
    SYSTEM = "system"
    CAMPAIGN = "campaign"  # an outbound campaign message (bot.campaigns)
    SEQUENCE = "sequence"  # a step of a follow-up sequence (bot.sequences)


@dataclass(frozen=True, slots=True)
class MediaRef:
    """Media attached to a message; bytes live in the media store, not here."""

    mime_type: str
    key: str | None = None
    size: int | None = None
    sha256: str | None = None
    filename: str | None = None
    provider_media_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Identifies one conversation: a customer on one business number of one channel."""

    channel: str
    account: str
    contact_phone: str


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One customer message as a channel delivered it, already normalized."""

    channel: str
    account: str
    provider_message_id: str
    sender_phone: str  # E.164
    kind: MessageKind
    received_at: datetime
    text: str | None = None
    sender_name: str | None = None
    media: MediaRef | None = None
    from_owner: bool = False  # typed by the business on its own phone
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> ConversationKey:
        return ConversationKey(self.channel, self.account, self.sender_phone)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to send, taken from the persisted outbox."""

    outbox_id: uuid.UUID
    conversation_id: uuid.UUID
    channel: str
    account: str
    to_phone: str
    kind: MessageKind
    text: str | None = None
    media: MediaRef | None = None
    author: Author = Author.BOT
    # An approved WhatsApp template ({"name", "language", "components"}), for channels
    # that need one outside the 24-hour customer-service window (Cloud API).
    template: dict[str, Any] | None = None
    reply_to: str | None = None  # provider id of the customer message this answers


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """What a channel answers after accepting an outbound message."""

    provider_message_id: str


@dataclass(frozen=True, slots=True)
class Turn:
    """One line of conversation memory."""

    role: str  # customer | bot | agent
    text: str
    at: datetime
