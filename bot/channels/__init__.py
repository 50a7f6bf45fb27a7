"""Channel adapters: each turns a transport into InboundMessage / OutboundMessage.

Imported lazily: the neonize client process (``bot.channels.neonize_host``) loads only the
modules it needs, not the simulator's Redis and SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.channels.simulator import SimulatorChannel
    from bot.conversation.channel import Channel, ChannelRegistry

__all__ = ["Channel", "ChannelRegistry", "SimulatorChannel"]


def __getattr__(name: str) -> Any:
    if name == "SimulatorChannel":
        from bot.channels.simulator import SimulatorChannel

        return SimulatorChannel
    if name in ("Channel", "ChannelRegistry"):
        from bot.conversation import channel

        return getattr(channel, name)
    raise AttributeError(name)
