"""Images and PDF documents agents send from the inbox: stored in the media store, then
queued in the outbox like any agent reply (the channel sends the stored file)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict

from bot.errors import MediaRejected
from bot.logs import get_logger
from bot.media.base import MediaStore
from bot.messages import MessageKind
from handoff.auth import Principal
from handoff.service import HandoffService, Outcome

log = get_logger("atiende.media.attachments")

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
DOCUMENT_TYPES = frozenset({"application/pdf"})


def attachment_kind(mime_type: str, filename: str | None) -> MessageKind:
    """IMAGE or DOCUMENT from the declared type (or the name); MediaRejected otherwise.
    The store then checks the bytes themselves against the kind's allowed types."""
    declared = mime_type.split(";", 1)[0].strip().lower()
    name = (filename or "").lower()
    if declared in IMAGE_TYPES or name.endswith((".jpg", ".jpeg", ".png", ".webp")):
        return MessageKind.IMAGE
    if declared in DOCUMENT_TYPES or name.endswith(".pdf"):
        return MessageKind.DOCUMENT
    raise MediaRejected("agents can send images (JPEG, PNG, WebP) and PDF documents",
                        kind="attachment")


class AgentAttachments:
    """Sends an agent's image or PDF to the customer."""

    def __init__(self, *, media: MediaStore, handoff: HandoffService) -> None:
        self._media = media
        self._handoff = handoff

    async def send(
        self, actor: Principal, conversation_id: uuid.UUID, chunks: AsyncIterator[bytes], *,
        mime_type: str, filename: str | None, caption: str | None = None,
    ) -> Outcome:
        """Refused with MediaRejected before anything is stored; the stored file is removed
        again when the conversation refuses the reply (not the agent's, closed…)."""
        kind = attachment_kind(mime_type, filename)
        if kind is MessageKind.DOCUMENT and not (filename or "").lower().endswith(".pdf"):
            filename = (filename or "documento") + ".pdf"
        ref = await self._media.save(chunks, kind=kind, mime_type=mime_type, filename=filename)
        assert ref.key is not None
        sent = False
        try:
            outcome = await self._handoff.reply(
                actor, conversation_id, (caption or "").strip() or None, kind=kind.value,
                media=asdict(ref),
            )
            sent = True
        finally:
            if not sent:
                await self._media.delete(ref.key)
        log.info("agent.attachment", conversation_id=str(conversation_id), kind=kind.value,
                 user_id=str(actor.id), message_id=str(outcome.message_id), size=ref.size)
        return outcome
