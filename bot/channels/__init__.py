"""Channel adapters: each turns a transport into InboundMessage / OutboundMessage."""

from bot.channels.base import Channel, ChannelRegistry
from bot.channels.simulator import SimulatorChannel

__all__ = ["Channel", "ChannelRegistry", "SimulatorChannel"]
