"""The channel port: what the outbox needs from a transport."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bot.errors import ChannelError
from bot.messages import OutboundMessage, SendReceipt


class Channel(Protocol):
    """A way to reach customers (simulator, neonize number, Cloud API number)."""

    name: str

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Deliver one message; raise ChannelError (with ``retry_after``) when it cannot."""
        ...


@runtime_checkable
class Presence(Protocol):
    """What a channel that shows a human touch offers: read receipts and typing."""

    async def mark_read(self, message: OutboundMessage) -> None:
        """Mark the customer message ``message`` answers (``reply_to``) as read."""
        ...

    async def typing(self, message: OutboundMessage, *, active: bool) -> None:
        """Show (or stop showing) "typing…" in the customer's chat."""
        ...


class ChannelRegistry:
    """The channels this process can send through, by name."""

    def __init__(self, channels: list[Channel] | None = None) -> None:
        self._channels: dict[str, Channel] = {c.name: c for c in channels or []}

    def add(self, channel: Channel) -> None:
        self._channels[channel.name] = channel

    def get(self, name: str) -> Channel:
        try:
            return self._channels[name]
        except KeyError:
            raise ChannelError(f"no channel {name!r} in this process", channel=name) from None
