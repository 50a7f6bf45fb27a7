"""The media store port and the streaming admission check every backend shares."""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

from bot.errors import MediaRejected
from bot.logs import get_logger
from bot.media.sniff import GENERIC_TYPES, SNIFF_BYTES, base_type, extension, sniff
from bot.messages import MediaRef, MessageKind
from bot.settings.media import MediaSettings

log = get_logger("atiende.media")

READ_CHUNK = 256 * 1024


class MediaStore(Protocol):
    """Where media bytes live (a folder or S3); PostgreSQL keeps only the ``MediaRef``."""

    backend: str

    async def save(
        self,
        chunks: AsyncIterator[bytes],
        *,
        kind: MessageKind,
        mime_type: str,
        filename: str | None = None,
    ) -> MediaRef:
        """Stream ``chunks`` in; raise MediaRejected (leaving nothing behind) when refused."""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes, in chunks; MediaNotFound when the key is unknown."""
        ...

    async def url(self, key: str, *, expires_in: int = 300) -> str:
        """A short-lived URL to the bytes (S3 presigned; local: HMAC-signed route of our API)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the bytes; deleting an unknown key is not an error."""
        ...


@dataclass(frozen=True, slots=True)
class Admitted:
    """A fully received, checked upload waiting in a temporary file."""

    path: Path
    key: str
    mime_type: str
    size: int
    sha256: str
    filename: str | None

    def ref(self) -> MediaRef:
        return MediaRef(
            mime_type=self.mime_type, key=self.key, size=self.size, sha256=self.sha256,
            filename=self.filename,
        )


class Admission:
    """Checks an upload while it streams to a temporary file: type by magic bytes, size cap."""

    def __init__(self, settings: MediaSettings, spool_dir: Path | None = None) -> None:
        self._settings = settings
        self._spool_dir = spool_dir

    @asynccontextmanager
    async def receive(
        self,
        chunks: AsyncIterator[bytes],
        *,
        kind: MessageKind,
        mime_type: str,
        filename: str | None,
    ) -> AsyncIterator[Admitted]:
        """Yield the admitted upload; the temporary file is always removed afterwards."""
        limits = self._settings.limits_for(kind)
        if limits is None:
            raise MediaRejected(f"{kind.value} messages carry no media", kind=kind.value)
        if self._spool_dir is not None:
            self._spool_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".upload-", dir=self._spool_dir)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                admitted = await self._stream(
                    chunks, out, path, kind=kind, declared=mime_type, filename=filename,
                    max_bytes=limits.max_bytes, allowed=limits.types,
                )
            yield admitted
        except MediaRejected as exc:
            log.info("media.rejected", kind=kind.value, declared=mime_type, reason=exc.reason)
            raise
        finally:
            path.unlink(missing_ok=True)

    async def _stream(
        self,
        chunks: AsyncIterator[bytes],
        out: IO[bytes],
        path: Path,
        *,
        kind: MessageKind,
        declared: str,
        filename: str | None,
        max_bytes: int,
        allowed: tuple[str, ...],
    ) -> Admitted:
        digest = hashlib.sha256()
        head = b""
        size = 0
        sniffed_type: str | None = None
        async for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if size > max_bytes:
                raise MediaRejected(
                    f"{kind.value} is larger than {max_bytes} bytes", kind=kind.value
                )
            if sniffed_type is None:
                head += chunk[: SNIFF_BYTES - len(head)]
                if len(head) >= SNIFF_BYTES:
                    sniffed_type = self._check(head, kind, declared, allowed)
            digest.update(chunk)
            out.write(chunk)
        if size == 0:
            raise MediaRejected("the file is empty", kind=kind.value)
        if sniffed_type is None:
            sniffed_type = self._check(head, kind, declared, allowed)
        return Admitted(
            path=path, key=_new_key(kind, sniffed_type), mime_type=sniffed_type, size=size,
            sha256=digest.hexdigest(), filename=_clean_filename(filename),
        )

    def _check(
        self, head: bytes, kind: MessageKind, declared: str, allowed: tuple[str, ...]
    ) -> str:
        found = sniff(head)
        if found is None:
            raise MediaRejected("unrecognised file type", kind=kind.value)
        if found.mime_type not in allowed:
            raise MediaRejected(
                f"{found.mime_type} is not accepted as {kind.value}", kind=kind.value
            )
        claimed = base_type(declared)
        if claimed not in GENERIC_TYPES and claimed != found.mime_type:
            raise MediaRejected(
                f"declared {claimed} but the content is {found.mime_type}", kind=kind.value
            )
        pixels = found.pixels
        if found.mime_type.startswith("image/") and pixels is not None:
            if pixels > self._settings.max_image_pixels:
                raise MediaRejected(
                    f"image of {found.width}x{found.height} pixels is too large", kind=kind.value
                )
        return found.mime_type


def _new_key(kind: MessageKind, mime_type: str) -> str:
    now = datetime.now(UTC)
    return f"{kind.value}/{now:%Y/%m}/{uuid.uuid4().hex}{extension(mime_type)}"


def _clean_filename(filename: str | None) -> str | None:
    if not filename:
        return None
    name = Path(filename.replace("\\", "/")).name.strip()
    return name[:200] or None


def check_key(key: str) -> str:
    """Refuse keys that could leave the store (``..``, absolute paths, odd characters)."""
    parts = key.split("/")
    if (
        not key or len(key) > 300 or key.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or not all(c.isalnum() or c in "/._-" for c in key)
    ):
        from bot.errors import MediaNotFound

        raise MediaNotFound(f"no media {key!r}")
    return key
