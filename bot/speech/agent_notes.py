"""Agents' voice notes: any recording in, checked, converted to OGG/Opus, stored, sent.

WhatsApp plays voice notes only as OGG/Opus, so whatever an agent records or uploads
(webm from the browser, m4a from a phone, wav, mp3…) is converted before it is stored
and queued in the outbox like any agent reply.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict

from bot.errors import MediaRejected
from bot.logs import get_logger
from bot.media import MediaStore
from bot.messages import MessageKind
from bot.speech.audio import decode
from bot.speech.outbound import to_ogg_opus
from handoff.auth import Principal
from handoff.service import HandoffService, Outcome

log = get_logger("atiende.speech.agent")


class AgentVoiceNotes:
    """Sends an agent's recording to the customer as a WhatsApp voice note."""

    def __init__(
        self, *, media: MediaStore, handoff: HandoffService, max_bytes: int, max_seconds: float
    ) -> None:
        self._media = media
        self._handoff = handoff
        self._max_bytes = max_bytes
        self._max_seconds = max_seconds

    async def send(
        self,
        actor: Principal,
        conversation_id: uuid.UUID,
        chunks: AsyncIterator[bytes],
        *,
        mime_type: str,
        caption: str | None = None,
    ) -> Outcome:
        """Refused with MediaRejected (too big) or AudioUnusable (not audio, silent, too
        long) before anything is stored; the converted note is removed again when the
        conversation refuses the reply."""
        data = await _read_capped(chunks, self._max_bytes)
        # Checks the header's duration first, then decodes at most max_seconds of audio.
        await asyncio.to_thread(decode, data, mime_type=mime_type, max_seconds=self._max_seconds)
        converted = await to_ogg_opus(data)
        ref = await self._media.save(
            _one(converted), kind=MessageKind.VOICE, mime_type="audio/ogg"
        )
        assert ref.key is not None
        sent = False
        try:
            outcome = await self._handoff.reply(
                actor, conversation_id, caption, kind=MessageKind.VOICE.value, media=asdict(ref)
            )
            sent = True
        finally:
            if not sent:
                await self._media.delete(ref.key)  # nothing stored half-way
        log.info(
            "agent.voice_note", conversation_id=str(conversation_id), user_id=str(actor.id),
            message_id=str(outcome.message_id), media_key=ref.key, size=ref.size,
        )
        return outcome


async def _read_capped(chunks: AsyncIterator[bytes], max_bytes: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise MediaRejected(f"voice is larger than {max_bytes} bytes", kind="voice")
        parts.append(chunk)
    return b"".join(parts)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data
