"""Media: bytes in a folder or S3, only the reference (key, type, size, sha256) in PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from bot.media.base import MediaStore
from bot.media.local import LocalMediaStore
from bot.media.signing import MEDIA_ROUTE, UrlSigner
from bot.media.sniff import Sniffed, sniff
from bot.settings.media import KindLimits, MediaSettings

__all__ = [
    "MEDIA_ROUTE",
    "KindLimits",
    "LocalMediaStore",
    "MediaSettings",
    "MediaStore",
    "Sniffed",
    "UrlSigner",
    "build_media_store",
    "sniff",
]


def build_media_store(settings: MediaSettings, *, data_dir: Path, signer: UrlSigner) -> MediaStore:
    """The configured backend (S3 only imported when chosen)."""
    if settings.backend == "s3":
        from bot.media.s3 import S3MediaStore

        return S3MediaStore(settings)
    return LocalMediaStore(settings.root or data_dir / "media", settings=settings, signer=signer)
