"""Erasures survive a backup restore: the erasure log is carried over and re-applied.

A backup taken before an erasure still holds that customer. ``atiende backup restore``
reads the erasure log (and the kept opt-outs and the salt) from the database it is about
to replace, and from a log file written by ``atiende contacts erasures --out`` when one
is given; after the restore it writes them back and erases again every contact the log
names (by contact id, or by the salted hash of its number for a contact that existed
before the erasure), then deletes again the media objects those erasures deleted (a
restored media folder or bucket brings them back).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.media import MediaStore
from bot.privacy.erasure import Eraser
from bot.privacy.metrics import PrivacyMetrics
from bot.privacy.values import CustomerRef
from handoff.audit import Actor

__all__ = ["ErasureLog", "Reapplied", "load_log", "read_log", "reapply", "write_log"]

FORMAT = "atiende-erasure-log/1"
_COLUMNS = (
    "id", "contact_id", "key_hashes", "opted_out", "source", "actor_kind", "actor_id",
    "actor_email", "requested_at", "state", "counts", "conversation_ids", "media_keys",
    "pending_keys", "last_error", "objects_done_at", "finished_at",
)


@dataclass
class ErasureLog:
    """The salt, the kept opt-out hashes and the erasures (no numbers, no names)."""

    salt: str | None = None
    optouts: dict[str, str] = field(default_factory=dict)  # hash -> created_at
    erasures: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> row

    def merge(self, other: ErasureLog | None) -> ErasureLog:
        if other is None:
            return self
        return ErasureLog(
            salt=self.salt or other.salt, optouts={**other.optouts, **self.optouts},
            erasures={**other.erasures, **self.erasures},
        )

    def __bool__(self) -> bool:
        return bool(self.optouts or self.erasures)


@dataclass(frozen=True, slots=True)
class Reapplied:
    erasures: int
    contacts: int
    media_objects: int
    optouts: int

    def line(self) -> str:
        return (f"erasure log re-applied: {self.erasures} erasure(s), {self.contacts} "
                f"contact(s) erased again, {self.media_objects} media object(s) deleted "
                f"again, {self.optouts} opt-out(s) kept")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


async def read_log(sessions: async_sessionmaker[AsyncSession]) -> ErasureLog | None:
    """The log of a database; None when it has none (from before this feature)."""
    async with sessions() as session:
        if await session.scalar(text("SELECT to_regclass('privacy_erasures')")) is None:
            return None
        salt = await session.scalar(text("SELECT salt FROM privacy_salt WHERE id = 1"))
        optouts = {str(h): _plain(at) for h, at in await session.execute(
            text("SELECT phone_hash, created_at FROM privacy_optouts"))}
        rows = await session.execute(text(f"SELECT {', '.join(_COLUMNS)} FROM privacy_erasures"))
        erasures = {str(row[0]): {c: _plain(v) for c, v in zip(_COLUMNS, row, strict=True)}
                    for row in rows}
    return ErasureLog(salt, optouts, erasures)


def write_log(log: ErasureLog, path: Path) -> None:
    """JSON lines, readable only by the owner (hashes and the salt: keep it like a
    backup)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"format": FORMAT, "salt": log.salt})]
    lines += [json.dumps({"optout": h, "created_at": at}) for h, at in log.optouts.items()]
    lines += [json.dumps({"erasure": row}) for row in log.erasures.values()]
    partial = path.with_name(path.name + ".partial")
    partial.touch(mode=0o600)
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    partial.replace(path)


def load_log(path: Path) -> ErasureLog:
    """A log written by ``write_log``; ValueError naming the line when it is not one."""
    log = ErasureLog()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if "format" in item:
                if item["format"] != FORMAT:
                    raise ValueError(f"unknown format {item['format']!r}")
                log.salt = item.get("salt")
            elif "optout" in item:
                log.optouts[str(item["optout"])] = str(item.get("created_at"))
            else:
                row = item["erasure"]
                log.erasures[str(row["id"])] = {c: row.get(c) for c in _COLUMNS}
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}, line {number}: not an erasure log line ({exc})") from exc
    return log


class _NoMemory:
    """A restore brings no Redis back: nothing of the memory to delete again."""

    async def erase(self, conversation_ids: Any) -> int:
        return 0


async def reapply(
    log: ErasureLog, *, sessions: async_sessionmaker[AsyncSession], media: MediaStore,
    metrics: PrivacyMetrics,
) -> Reapplied:
    """Write ``log`` back into the (restored) database and erase again what it names."""
    async with sessions() as session, session.begin():
        if log.salt:
            await session.execute(text(
                "UPDATE privacy_salt SET salt = :s WHERE id = 1 AND salt <> :s"), {"s": log.salt})
        for phone_hash, at in log.optouts.items():
            await session.execute(text(
                "INSERT INTO privacy_optouts (phone_hash, created_at) VALUES (:h, "
                "CAST(:at AS timestamptz)) ON CONFLICT DO NOTHING"), {"h": phone_hash, "at": at})
        for row in log.erasures.values():
            await _insert_erasure(session, row)
        contacts = await _contacts_again(session, list(log.erasures))
        # what the erasures deleted from the media store comes back with a restored
        # folder or bucket: delete it again
        await session.execute(text(
            "UPDATE privacy_erasures SET pending_keys = media_keys, state = 'objects' "
            "WHERE id = ANY(CAST(:ids AS uuid[])) AND cardinality(media_keys) > 0"),
            {"ids": list(log.erasures)})
    eraser = Eraser(sessions=sessions, media=media, memory=_NoMemory(), metrics=metrics,
                    settle_seconds=0)
    erased = 0
    async for outcomes in eraser.erase_many(
        [CustomerRef(contact_id=c) for c in contacts], actor=Actor.cli(), source="reapply",
        batch=50,
    ):
        erased += sum(1 for o in outcomes if o.erased is not None and not o.erased.resumed)
    media_objects = 0
    for erasure_id in log.erasures:
        left = await eraser.finish_objects(uuid.UUID(erasure_id))
        media_objects += left.deleted
    return Reapplied(len(log.erasures), erased, media_objects, len(log.optouts))


async def _insert_erasure(session: AsyncSession, row: dict[str, Any]) -> None:
    values = {c: row.get(c) for c in _COLUMNS}
    values["counts"] = json.dumps(values.get("counts") or {})
    casts = {"id": "uuid", "contact_id": "uuid", "actor_id": "uuid",
             "counts": "jsonb", "key_hashes": "varchar[]", "conversation_ids": "uuid[]",
             "media_keys": "text[]",
             "pending_keys": "text[]", "requested_at": "timestamptz",
             "objects_done_at": "timestamptz", "finished_at": "timestamptz"}
    placeholders = ", ".join(
        f"CAST(:{c} AS {casts[c]})" if c in casts else f":{c}" for c in _COLUMNS
    )
    for key in ("key_hashes", "conversation_ids", "media_keys", "pending_keys"):
        values[key] = list(values.get(key) or [])
    await session.execute(text(
        f"INSERT INTO privacy_erasures ({', '.join(_COLUMNS)}) VALUES ({placeholders}) "
        "ON CONFLICT (id) DO NOTHING"), values)


async def _contacts_again(session: AsyncSession, erasure_ids: list[str]) -> list[uuid.UUID]:
    """Contacts of the restored data that the log says were erased: by id, or by the
    hash of their number when they existed before that erasure."""
    rows = await session.execute(text(
        "WITH e AS (SELECT id, contact_id, requested_at, unnest(key_hashes) AS hash "
        "FROM privacy_erasures WHERE id = ANY(CAST(:ids AS uuid[]))), "
        "h AS (SELECT id, created_at, privacy_phone_hash(phone_e164) AS hash FROM contacts "
        "WHERE erased_at IS NULL AND phone_e164 IS NOT NULL) "
        "SELECT h.id FROM h JOIN e ON e.hash = h.hash AND h.created_at <= e.requested_at "
        "UNION SELECT c.id FROM contacts c JOIN e ON e.contact_id = c.id "
        "WHERE c.erased_at IS NULL"), {"ids": erasure_ids})
    return [r[0] for r in rows]
