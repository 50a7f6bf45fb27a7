"""Channel adapters: each turns a transport into InboundMessage / OutboundMessage."""

from bot.channels.simulator import SimulatorChannel
from bot.conversation.channel import Channel, ChannelRegistry

__all__ = ["Channel", "ChannelRegistry", "SimulatorChannel"]
