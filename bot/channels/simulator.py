"""The simulator channel: a WhatsApp stand-in for the web chat, the CLI and the tests.

Sending records nothing outside Atiende: the outbox row is the message, and an
event tells the web chat (and ``atiende ask``) that it is there. No pacing.
"""

from __future__ import annotations

from bot.infra.redis_adapter import EventBus
from bot.messages import OutboundMessage, SendReceipt
from handoff.conversations import display_phone

SIMULATOR = "simulator"
SIMULATOR_ACCOUNT = "demo"


class SimulatorChannel:
    name = SIMULATOR

    def __init__(self, events: EventBus) -> None:
        self._events = events

    async def send(self, message: OutboundMessage) -> SendReceipt:
        event: dict[str, object] = {
            "outbox_id": str(message.outbox_id), "text": message.text, "author": message.author,
            "kind": message.kind.value,
        }
        if message.media is not None:
            # What a phone would receive: the file's reference (the bytes stay in the store).
            event["media"] = {
                "key": message.media.key, "mime_type": message.media.mime_type,
                "size": message.media.size, "sha256": message.media.sha256,
            }
        await self._events.publish(f"sim:{display_phone(message.to_phone)}", event)
        return SendReceipt(provider_message_id=f"sim-{message.outbox_id}")
