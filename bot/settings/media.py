"""Media settings (``ATIENDE_MEDIA__*``): where bytes go and what is accepted per kind."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from bot.messages import MessageKind

_MB = 1024 * 1024


class KindLimits(BaseModel):
    """What one message kind may carry: a size cap and the sniffed types allowed."""

    model_config = ConfigDict(frozen=True)

    max_bytes: int = Field(gt=0)
    types: tuple[str, ...]


def _default_limits() -> dict[MessageKind, KindLimits]:
    # WhatsApp's own caps: audio 16 MB, images 5 MB, documents 100 MB.
    return {
        MessageKind.VOICE: KindLimits(
            max_bytes=16 * _MB,
            types=("audio/ogg", "audio/mpeg", "audio/mp4", "audio/wav", "audio/webm",
                   "audio/amr", "audio/aac", "audio/flac"),
        ),
        MessageKind.IMAGE: KindLimits(
            max_bytes=5 * _MB, types=("image/jpeg", "image/png", "image/webp", "image/gif"),
        ),
        MessageKind.DOCUMENT: KindLimits(
            max_bytes=100 * _MB,
            types=("application/pdf", "application/zip", "application/x-ole-storage",
                   "text/plain", "image/jpeg", "image/png"),
        ),
    }


class MediaSettings(BaseModel):
    """``backend`` local (a folder, the embedded default) or s3 (MinIO, AWS, any S3 API)."""

    model_config = ConfigDict(frozen=True)

    backend: Literal["local", "s3"] = "local"
    root: Path | None = Field(default=None, description="local folder; default data_dir/media")
    s3_endpoint_url: str | None = Field(default=None, description="MinIO: http://host:9000")
    s3_bucket: str = "atiende-media"
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_prefix: str = ""
    s3_create_bucket: bool = False
    url_ttl_seconds: int = Field(default=300, gt=0, le=7 * 24 * 3600)
    max_image_pixels: int = Field(default=50_000_000, gt=0, description="decompression bombs")
    limits: dict[MessageKind, KindLimits] = Field(default_factory=_default_limits)

    @field_validator("limits", mode="after")
    @classmethod
    def _keep_defaults_for_unnamed_kinds(
        cls, value: dict[MessageKind, KindLimits]
    ) -> dict[MessageKind, KindLimits]:
        # ATIENDE_MEDIA__LIMITS='{"image": {...}}' changes images only, not every kind.
        return {**_default_limits(), **value}

    def limits_for(self, kind: MessageKind) -> KindLimits | None:
        return self.limits.get(kind)
