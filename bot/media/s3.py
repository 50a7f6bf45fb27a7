"""S3 media store (MinIO, AWS, any S3 API): the only module importing boto3.

boto3 is synchronous; every call runs in a worker thread. botocore errors are
translated into ours here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bot.errors import MediaNotFound, MediaStoreError
from bot.media.base import READ_CHUNK, Admission, check_key
from bot.messages import MediaRef, MessageKind
from bot.settings.media import MediaSettings

_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3MediaStore:
    """Objects under ``s3://bucket/<prefix><kind>/<yyyy>/<mm>/<uuid>.<ext>``."""

    backend = "s3"

    def __init__(self, settings: MediaSettings) -> None:
        self._settings = settings
        self._bucket = settings.s3_bucket
        self._prefix = settings.s3_prefix
        self._admission = Admission(settings)
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=(
                settings.s3_access_key_id.get_secret_value() if settings.s3_access_key_id else None
            ),
            aws_secret_access_key=(
                settings.s3_secret_access_key.get_secret_value()
                if settings.s3_secret_access_key else None
            ),
            config=Config(
                signature_version="s3v4", retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

    def _object(self, key: str) -> str:
        return f"{self._prefix}{check_key(key)}"

    async def _call(self, what: str, fn: Any, /, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise MediaNotFound(f"no media {kwargs.get('Key')!r}") from exc
            raise MediaStoreError(f"S3 {what} failed: {code or exc}", backend="s3") from exc
        except BotoCoreError as exc:
            raise MediaStoreError(f"S3 {what} failed: {exc}", backend="s3") from exc

    async def ensure_bucket(self) -> None:
        """Create the bucket when it is missing (MinIO on a fresh machine, tests)."""
        try:
            await self._call("head_bucket", self._client.head_bucket, Bucket=self._bucket)
        except (MediaNotFound, MediaStoreError):
            await self._call("create_bucket", self._client.create_bucket, Bucket=self._bucket)

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
            # upload_file streams from disk, multipart for big files: never whole in memory.
            await self._call(
                "upload", self._client.upload_file,
                Filename=str(upload.path), Bucket=self._bucket, Key=self._object(upload.key),
                ExtraArgs={
                    "ContentType": upload.mime_type,
                    "Metadata": {"sha256": upload.sha256},
                },
            )
            return upload.ref()

    async def read(self, key: str) -> AsyncIterator[bytes]:
        response = await self._call(
            "get_object", self._client.get_object, Bucket=self._bucket, Key=self._object(key)
        )
        body = response["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, READ_CHUNK):
                yield chunk
        finally:
            body.close()

    async def url(self, key: str, *, expires_in: int = 300) -> str:
        url: str = await self._call(
            "presign", self._client.generate_presigned_url,
            ClientMethod="get_object",
            Params={"Bucket": self._bucket, "Key": self._object(key)},
            ExpiresIn=expires_in,
        )
        return url

    async def delete(self, key: str) -> None:
        await self._call(
            "delete_object", self._client.delete_object, Bucket=self._bucket,
            Key=self._object(key),
        )
