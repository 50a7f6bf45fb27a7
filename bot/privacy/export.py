"""Exporting everything held about one customer: a JSON document (every ``HOLDINGS``
table's rows for them, and whatsmeow's contact entries of them) and an archive with that
document plus their media files.

The archive is written to a file on disk (streamed, a file at a time, never whole in
memory), so a 16 MB document costs disk, not RAM; a media file the store no longer
has is listed under ``missing`` in the document instead of failing the export.
"""

from __future__ import annotations

import json
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import MediaNotFound, MediaStoreError
from bot.logs import get_logger
from bot.media import MediaStore
from bot.privacy.holdings import HOLDINGS
from bot.privacy.store import existing_tables, last_erasure
from bot.privacy.values import AlreadyErased, CustomerNotFound, CustomerRef, numbers_of
from bot.privacy.whatsmeow import addresses_of, export_store

__all__ = ["ArchiveSummary", "Exporter", "FORMAT"]

FORMAT = "atiende-customer-export/1"
log = get_logger("atiende.privacy")


@dataclass(frozen=True, slots=True)
class ArchiveSummary:
    path: Path
    contact_id: uuid.UUID
    media_files: int
    missing: int
    bytes: int


class Exporter:
    """Builds exports; never changes anything but the audit log (the route records it)."""

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], media: MediaStore) -> None:
        self._sessions = sessions
        self._media = media

    async def document(self, ref: CustomerRef) -> dict[str, Any]:
        """Everything held about the customer, as one JSON-ready object; CustomerNotFound
        for an unknown or erased number."""
        async with self._sessions() as session:
            contact = (await session.execute(text(
                "SELECT to_jsonb(t) AS row, t.id, t.phone_e164, t.wa_lid FROM contacts t "
                "WHERE t.erased_at IS NULL AND (t.phone_e164 = :key OR t.id = :cid)"),
                {"key": ref.key, "cid": ref.contact_id})).one_or_none()
            if contact is None:
                erased = await last_erasure(session, key=ref.key, contact_id=ref.contact_id)
                if erased is not None:
                    raise AlreadyErased(ref.label(), erased.id, erased.requested_at)
                raise CustomerNotFound(f"no customer is stored under {ref.label()}")
            conversations = list((await session.execute(text(
                "SELECT id FROM conversations WHERE contact_id = :c"), {"c": contact.id}
            )).scalars())
            numbers, _ = numbers_of([contact.phone_e164])
            params = {
                "contacts": [contact.id], "conversations": conversations,
                "keys": [contact.phone_e164], "numbers": numbers,
                "targets": [f"contact:{contact.id}",
                            *(f"conversation:{c}" for c in conversations)],
            }
            tables = await existing_tables(session)
            data: dict[str, list[Any]] = {}
            for holding in HOLDINGS:
                if holding.export is None or holding.table not in tables:
                    continue
                rows = await session.execute(text(
                    f"SELECT {holding.export} FROM {holding.table} t WHERE {holding.where} "
                    f"ORDER BY {holding.order}"), params)
                data[holding.table] = [r[0] for r in rows]
            whatsmeow = await export_store(
                session, addresses_of([contact.phone_e164], [contact.wa_lid]))
            if whatsmeow:
                data["whatsmeow_contacts"] = whatsmeow
        return {
            "format": FORMAT,
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "contact": contact.row,
            "media": _media_index(data.get("messages", [])),
            "data": data,
        }

    async def archive(self, ref: CustomerRef, target: Path) -> ArchiveSummary:
        """Write ``export.json`` and every media file of the customer to the zip
        ``target``; media the store cannot give are listed in the JSON as missing."""
        document = await self.document(ref)
        files = written = missing = 0
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for item in document["media"]:
                try:
                    written += await self._add(archive, item)
                    files += 1
                except (MediaNotFound, MediaStoreError) as exc:
                    item["missing"] = str(exc)
                    missing += 1
                    log.warning("privacy.export_media_missing", key=item["key"],
                                error=str(exc)[:200])
            body = json.dumps(document, ensure_ascii=False, indent=2, default=str)
            archive.writestr("export.json", body)
        contact_id = uuid.UUID(str(document["contact"]["id"]))
        return ArchiveSummary(target, contact_id, files, missing, written + len(body))

    async def _add(self, archive: zipfile.ZipFile, item: dict[str, Any]) -> int:
        size = 0
        info = zipfile.ZipInfo(item["archive_path"], date_time=_zip_time(item.get("created_at")))
        info.compress_type = zipfile.ZIP_STORED  # media are compressed already
        with archive.open(info, "w", force_zip64=True) as out:
            async for chunk in self._media.read(item["key"]):
                out.write(chunk)
                size += len(chunk)
        return size


def _media_index(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per stored media file, with where it is in the archive."""
    index = []
    for message in messages:
        media = message.get("media") or {}
        key = media.get("key") if isinstance(media, dict) else None
        if not isinstance(key, str):
            continue
        name = PurePosixPath(key).name
        index.append({
            "message_id": message.get("id"), "key": key,
            "archive_path": f"media/{message.get('id')}-{name}",
            "mime_type": media.get("mime_type"), "size": media.get("size"),
            "sha256": media.get("sha256"), "filename": media.get("filename"),
            "created_at": message.get("created_at"),
        })
    return index


def _zip_time(stamp: object) -> tuple[int, int, int, int, int, int]:
    try:
        when = datetime.fromisoformat(str(stamp))
    except ValueError:
        when = datetime.now(UTC)
    return (max(when.year, 1980), when.month, when.day, when.hour, when.minute, when.second)
