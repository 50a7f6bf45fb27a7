"""Media for agents: staff get a message's media (or a short-lived link to it); signed
links themselves need no login, which is what lets S3 and our own store work alike."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from bot.api.auth import StaffDep
from bot.api.deps import RuntimeDep
from bot.logs import get_logger
from bot.media import MediaStore
from bot.media.access import MediaAccess
from bot.media.sniff import mime_for_key

router = APIRouter(prefix="/api/v1/media", tags=["media"])
outgoing = APIRouter(prefix="/api/v1", tags=["media"])
log = get_logger("atiende.api.media")


@router.get("/signed/{key:path}")
async def signed_media(
    key: str,
    runtime: RuntimeDep,
    expires: Annotated[int, Query()],
    sig: Annotated[str, Query(min_length=64, max_length=64)],
) -> StreamingResponse:
    """Serve stored media to whoever holds a valid, unexpired link from ``MediaStore.url``."""
    if not runtime.url_signer.verify(key, expires, sig):
        log.info("media.bad_signature", key=key)
        raise HTTPException(status_code=403, detail="invalid or expired media link")
    return await stream_media(runtime.media, key)


async def stream_media(store: MediaStore, key: str) -> StreamingResponse:
    """Stream ``key``; a missing key is a 404 before any byte is sent."""
    chunks = store.read(key)
    first = await anext(chunks, b"")  # raises MediaNotFound (→ 404) up front

    async def body() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk

    return StreamingResponse(
        body(), media_type=mime_for_key(key),
        headers={"Cache-Control": "private, max-age=60", "X-Content-Type-Options": "nosniff"},
    )


class MediaLinkPublic(BaseModel):
    message_id: uuid.UUID
    kind: str
    url: str
    expires_in: int
    mime_type: str
    size: int | None
    sha256: str | None
    filename: str | None
    transcript: str | None


class VoiceSent(BaseModel):
    conversation_id: uuid.UUID
    message_id: uuid.UUID | None
    owner: str


def get_media_access(runtime: RuntimeDep) -> MediaAccess:
    return MediaAccess(
        sessions=runtime.sessions, store=runtime.media,
        ttl=runtime.settings.media.url_ttl_seconds,
    )


MediaAccessDep = Annotated[MediaAccess, Depends(get_media_access)]


@router.get("/messages/{message_id}", response_model=MediaLinkPublic)
async def message_media_link(
    message_id: uuid.UUID, access: MediaAccessDep, user: StaffDep
) -> MediaLinkPublic:
    """A short-lived link to a message's photo, document or voice note (with its transcript)."""
    link = await access.link(message_id, user)
    media = link.item.media
    log.info("media.link", message_id=str(message_id), user_id=str(user.id))
    return MediaLinkPublic(
        message_id=message_id, kind=link.item.kind, url=link.url, expires_in=link.expires_in,
        mime_type=media.mime_type, size=media.size, sha256=media.sha256,
        filename=media.filename, transcript=link.item.transcript,
    )


@router.get("/messages/{message_id}/content")
async def message_media_content(
    message_id: uuid.UUID, access: MediaAccessDep, runtime: RuntimeDep, user: StaffDep
) -> StreamingResponse:
    """The media bytes themselves, streamed, for signed-in staff."""
    item = await access.of_message(message_id, user)
    assert item.media.key is not None
    return await stream_media(runtime.media, item.media.key)


@outgoing.post("/conversations/{conversation_id}/voice", response_model=VoiceSent)
async def send_voice_note(
    conversation_id: uuid.UUID,
    runtime: RuntimeDep,
    user: StaffDep,
    audio: Annotated[UploadFile, File(description="the agent's recording (webm, m4a, wav, mp3…)")],
    caption: Annotated[str | None, Form(max_length=1024)] = None,
) -> VoiceSent:
    """Send a voice note to the customer as the agent; it leaves as OGG/Opus."""
    outcome = await runtime.agent_voice.send(
        user, conversation_id, _upload_chunks(audio), mime_type=audio.content_type or "",
        caption=caption,
    )
    return VoiceSent(conversation_id=outcome.conversation_id, message_id=outcome.message_id,
                     owner=outcome.owner.value)


async def _upload_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(256 * 1024):
        yield chunk
