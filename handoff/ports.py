"""What the handoff needs from outside, as small Protocols (``bot`` implements and wires them)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

Clock = Callable[[], datetime]


class EventPublisher(Protocol):
    """Notifies every app process (the inbox pages listen)."""

    async def publish(self, topic: str, payload: dict[str, Any]) -> None: ...


class OutboxFlusher(Protocol):
    """Sends the pending outbound rows of a conversation (they are written by the service)."""

    async def send_pending(self, conversation_id: uuid.UUID | None = None) -> int: ...


class MemoryReset(Protocol):
    """Forgets the bot's short-term memory of a conversation (fresh context)."""

    async def forget(self, conversation_id: uuid.UUID) -> None: ...


class ConversationSummarizer(Protocol):
    """Summarizes ``(role, text)`` turns for the agent; None when it cannot."""

    async def summarize(self, turns: Sequence[tuple[str, str]], *, language: str) -> str | None: ...
