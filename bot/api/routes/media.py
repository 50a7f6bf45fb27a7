"""Media for agents: bytes behind short-lived signed links (no login needed for those)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse

from bot.api.deps import RuntimeDep
from bot.logs import get_logger
from bot.media import MediaStore
from bot.media.sniff import mime_for_key

router = APIRouter(prefix="/api/v1/media", tags=["media"])
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
