"""The embedded default: media in a folder (``data_dir/media``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from bot.errors import MediaNotFound, MediaStoreError
from bot.media.base import READ_CHUNK, Admission, check_key
from bot.media.signing import UrlSigner
from bot.messages import MediaRef, MessageKind
from bot.settings.media import MediaSettings


class LocalMediaStore:
    """Bytes under ``root/<kind>/<yyyy>/<mm>/<uuid>.<ext>``; written whole or not at all."""

    backend = "local"

    def __init__(self, root: Path, *, settings: MediaSettings, signer: UrlSigner) -> None:
        self._root = root.resolve()
        self._signer = signer
        self._admission = Admission(settings, spool_dir=self._root / ".incoming")

    def _path(self, key: str) -> Path:
        return self._root / check_key(key)

    async def save(
        self,
        chunks: AsyncIterator[bytes],
        *,
        kind: MessageKind,
        mime_type: str,
        filename: str | None = None,
    ) -> MediaRef:
        async with self._admission.receive(
            chunks, kind=kind, mime_type=mime_type, filename=filename
        ) as upload:
            target = self._path(upload.key)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                # Same filesystem: an atomic rename, so a reader never sees half a file.
                os.replace(upload.path, target)
            except OSError as exc:
                raise MediaStoreError(f"cannot store {upload.key}: {exc}", backend="local") from exc
            return upload.ref()

    async def read(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise MediaNotFound(f"no media {key!r}") from None
        try:
            while chunk := await asyncio.to_thread(handle.read, READ_CHUNK):
                yield chunk
        finally:
            handle.close()

    async def url(self, key: str, *, expires_in: int = 300) -> str:
        if not await asyncio.to_thread(self._path(key).is_file):
            raise MediaNotFound(f"no media {key!r}")
        return self._signer.url(key, expires_in=expires_in)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)
