"""One contract suite for every MediaStore backend: a folder and S3 (moto's real server)."""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.errors import MediaNotFound, MediaRejected
from bot.media import KindLimits, LocalMediaStore, MediaSettings, MediaStore, UrlSigner
from bot.media.s3 import S3MediaStore
from bot.messages import MessageKind
from tests.voice.conftest import chunks_of, png

PDF = b"%PDF-1.4\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 4000 + b"%%EOF\n"


def _settings(**overrides: object) -> MediaSettings:
    return MediaSettings(**overrides)  # type: ignore[arg-type]


@pytest.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, s3_endpoint: str
) -> AsyncIterator[MediaStore]:
    limits = dict(MediaSettings().limits)
    limits[MessageKind.IMAGE] = KindLimits(max_bytes=200_000, types=("image/png", "image/jpeg"))
    if request.param == "local":
        yield LocalMediaStore(
            tmp_path / "media", settings=_settings(limits=limits), signer=UrlSigner("k" * 32)
        )
        return
    s3 = S3MediaStore(
        _settings(
            backend="s3", s3_endpoint_url=s3_endpoint, s3_bucket=f"b{uuid.uuid4().hex[:12]}",
            s3_access_key_id="test", s3_secret_access_key="test", s3_prefix="atiende/",
            limits=limits,
        )
    )
    await s3.ensure_bucket()
    yield s3


async def _read_all(store: MediaStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key)])


async def _stored_keys(store: MediaStore, tmp_path: Path) -> list[str]:
    if isinstance(store, LocalMediaStore):
        return [str(p.relative_to(tmp_path / "media")) for p in (tmp_path / "media").rglob("*")
                if p.is_file()]
    assert isinstance(store, S3MediaStore)
    listed = store._client.list_objects_v2(Bucket=store._bucket)
    return [o["Key"] for o in listed.get("Contents", [])]


async def test_save_read_url_delete_round_trip(store: MediaStore) -> None:
    ref = await store.save(
        chunks_of(PDF, 4096), kind=MessageKind.DOCUMENT, mime_type="application/pdf",
        filename="../../póliza 2024.pdf",
    )
    assert ref.key and ref.key.startswith("document/") and ref.key.endswith(".pdf")
    assert ref.mime_type == "application/pdf"
    assert ref.size == len(PDF)
    assert ref.sha256 == hashlib.sha256(PDF).hexdigest()
    assert ref.filename == "póliza 2024.pdf"
    assert await _read_all(store, ref.key) == PDF

    url = await store.url(ref.key, expires_in=60)
    if store.backend == "s3":
        # A real presigned URL, fetched over HTTP from the S3 server.
        assert "X-Amz-Signature" in url and "X-Amz-Expires=60" in url
        async with httpx.AsyncClient() as http:
            fetched = await http.get(url)
        assert fetched.status_code == 200 and fetched.content == PDF
    else:
        assert url.startswith("/api/v1/media/signed/document/") and "sig=" in url

    await store.delete(ref.key)
    with pytest.raises(MediaNotFound):
        await _read_all(store, ref.key)
    await store.delete(ref.key)  # deleting twice is fine


@pytest.mark.parametrize(
    ("kind", "declared", "payload", "reason"),
    [
        (MessageKind.IMAGE, "image/jpeg", b"", "empty"),
        (MessageKind.IMAGE, "image/png", b"PK\x03\x04" + b"\x00" * 5000, "application/zip"),
        (MessageKind.IMAGE, "image/png", png(60_000, 60_000), "too large"),
        (MessageKind.VOICE, "audio/ogg", b"%PDF-1.4 not audio", "application/pdf"),
        (MessageKind.VOICE, "audio/ogg", b"\x00\x01\x02\x03garbage" * 10, "unrecognised"),
        (MessageKind.DOCUMENT, "application/pdf", png(10, 10), "declared application/pdf"),
        (MessageKind.TEXT, "text/plain", b"hola", "carry no media"),
    ],
    ids=["empty", "zip-as-image", "pixel-bomb", "pdf-as-voice", "garbage", "mime-lie", "text"],
)
async def test_rejections_leave_nothing_behind(
    store: MediaStore, tmp_path: Path, kind: MessageKind, declared: str, payload: bytes,
    reason: str,
) -> None:
    with pytest.raises(MediaRejected, match=reason):
        await store.save(chunks_of(payload), kind=kind, mime_type=declared)
    assert await _stored_keys(store, tmp_path) == []


async def test_zip_bomb_disguised_as_image_is_refused_without_unpacking(
    store: MediaStore, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("foto.jpg", b"\x00" * 50_000_000)  # 50 MB that packs into ~50 KB
    bomb = buffer.getvalue()
    assert len(bomb) < 200_000
    with pytest.raises(MediaRejected, match="application/zip is not accepted as image"):
        await store.save(chunks_of(bomb), kind=MessageKind.IMAGE, mime_type="image/jpeg",
                         filename="choque.jpg")
    assert await _stored_keys(store, tmp_path) == []


async def test_size_limit_stops_the_stream_early(store: MediaStore, tmp_path: Path) -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield png(100, 100)
        while True:
            pulled += 1
            yield b"\x00" * 65536

    with pytest.raises(MediaRejected, match="larger than 200000 bytes"):
        await store.save(endless(), kind=MessageKind.IMAGE, mime_type="image/png")
    assert pulled <= 4  # stopped at the cap, never buffered the whole stream
    assert await _stored_keys(store, tmp_path) == []


async def test_octet_stream_is_typed_by_content(store: MediaStore) -> None:
    image = png(640, 480)
    ref = await store.save(chunks_of(image), kind=MessageKind.IMAGE,
                           mime_type="application/octet-stream")
    assert ref.mime_type == "image/png" and ref.key and ref.key.endswith(".png")


async def test_unknown_and_hostile_keys_are_not_found(store: MediaStore) -> None:
    for key in ("voice/2024/01/nope.ogg", "../../etc/passwd", "/etc/passwd"):
        with pytest.raises(MediaNotFound):
            await _read_all(store, key)


def test_signed_links_expire_and_resist_tampering() -> None:
    now = [1_000_000.0]
    signer = UrlSigner("secret-" * 6, now=lambda: now[0])
    url = signer.url("image/2024/01/a.png", expires_in=300)
    query = dict(p.split("=") for p in url.split("?", 1)[1].split("&"))
    expires, sig = int(query["expires"]), query["sig"]
    assert signer.verify("image/2024/01/a.png", expires, sig)
    assert not signer.verify("image/2024/01/b.png", expires, sig)
    assert not signer.verify("image/2024/01/a.png", expires + 1, sig)
    assert not UrlSigner("other-" * 6, now=lambda: now[0]).verify(
        "image/2024/01/a.png", expires, sig
    )
    now[0] += 301
    assert not signer.verify("image/2024/01/a.png", expires, sig)


def test_limits_from_the_environment_change_only_the_kinds_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.settings import Settings

    monkeypatch.setenv(
        "ATIENDE_MEDIA__LIMITS", '{"image": {"max_bytes": 8000000, "types": ["image/jpeg"]}}'
    )
    monkeypatch.setenv("ATIENDE_MEDIA__BACKEND", "s3")
    media = Settings().media
    assert media.backend == "s3"
    image = media.limits_for(MessageKind.IMAGE)
    assert image is not None and image.max_bytes == 8_000_000 and image.types == ("image/jpeg",)
    voice = media.limits_for(MessageKind.VOICE)
    assert voice is not None and "audio/ogg" in voice.types  # untouched default
