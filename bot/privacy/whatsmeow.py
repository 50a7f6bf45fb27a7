"""whatsmeow's session store (neonize numbers) holds customers too: their contact entry
(push name, names from the business phone's address book), their Signal sessions and
identity keys, chat settings, message secrets, privacy tokens, the LID ↔ number map and
the buffer of messages sent to them. It lives in the app database in its own schema
(``ATIENDE_CHANNELS__NEONIZE__STORE_SCHEMA``, tables an older Atiende left elsewhere
included), so an erasure deletes the customer's rows there in its own transaction.

Every schema holding ``whatsmeow_*`` tables is searched; a business without neonize has
none and nothing is done. The business's own devices (``whatsmeow_device``, the
``our_jid`` of every row) are never touched: rows are matched by the customer's column
only, and the numbers and LIDs of the business's own devices are left out of the match.

whatsmeow names one person in several forms; all are matched by their digits:
``5215512345678@s.whatsapp.net`` (a chat), ``5215512345678:3@s.whatsapp.net`` (a device),
``5215512345678:3`` and ``5215512345678.0:3`` (Signal addresses), ``123456789@lid`` and
``123456789_1:3`` (the hidden-number id), bare digits in ``whatsmeow_lid_map``. Mexican
numbers are matched with and without the old mobile ``1`` (``+52 1 55…``).

Not reachable: a store in a database of its own (``…__STORE_URL``), and whatsmeow's
decrypted-event buffer, which names no sender (whatsmeow empties it itself).
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.logs import get_logger

__all__ = ["STORE_TABLES", "StoreTable", "addresses_of", "erase_store", "export_store"]

log = get_logger("atiende.privacy")

_MX_MOBILE = re.compile(r"^52(\d{10})$")

# One value of a column → "pn:<digits>" (a phone), "lid:<digits>" (a hidden-number id) or
# NULL (a group, a broadcast, anything else).
_JID = (
    "CASE WHEN {c} ~ '^[0-9]+(\\.0)?(:[0-9]+)?(@(s\\.whatsapp\\.net|c\\.us))?$' "
    "THEN 'pn:' || substring({c} from '^[0-9]+') "
    "WHEN {c} ~ '^[0-9]+((_1)?:[0-9]+|(\\.[0-9]+)?(:[0-9]+)?@lid)$' "
    "THEN 'lid:' || substring({c} from '^[0-9]+') END"
)
_FORMS = {"jid": _JID, "pn": "'pn:' || {c}", "lid": "'lid:' || {c}"}


@dataclass(frozen=True, slots=True)
class StoreTable:
    """A whatsmeow table naming customers: its columns and the form each is written in
    (``jid``: a JID or Signal address; ``pn`` / ``lid``: bare digits)."""

    table: str
    columns: tuple[tuple[str, str], ...]

    def address(self, column: str, form: str) -> str:
        return _FORMS[form].format(c=f"t.{column}")

    def where(self) -> str:
        return " OR ".join(f"({self.address(c, f)}) = ANY(:addresses)"
                           for c, f in self.columns)

    def owner(self) -> str:
        return "ARRAY[" + ", ".join(self.address(c, f) for c, f in self.columns) + "]"


STORE_TABLES: tuple[StoreTable, ...] = (
    StoreTable("whatsmeow_contacts", (("their_jid", "jid"),)),
    StoreTable("whatsmeow_chat_settings", (("chat_jid", "jid"),)),
    StoreTable("whatsmeow_message_secrets", (("chat_jid", "jid"), ("sender_jid", "jid"))),
    StoreTable("whatsmeow_privacy_tokens", (("their_jid", "jid"),)),
    StoreTable("whatsmeow_retry_buffer", (("chat_jid", "jid"),)),
    StoreTable("whatsmeow_sessions", (("their_id", "jid"),)),
    StoreTable("whatsmeow_identity_keys", (("their_id", "jid"),)),
    StoreTable("whatsmeow_sender_keys", (("sender_id", "jid"),)),
    StoreTable("whatsmeow_lid_map", (("pn", "pn"), ("lid", "lid"))),
)
_BY_NAME = {t.table: t for t in STORE_TABLES}

# whatsmeow tables of every schema the app's user may read and delete from, with their
# columns (an older whatsmeow may lack one: that table is then left alone)
_DISCOVER = text(
    "SELECT n.nspname AS schema, c.relname AS table, "
    "has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT') "
    "AND has_table_privilege(c.oid, 'DELETE') AS allowed, "
    "array_agg(a.attname::text) AS columns FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "WHERE c.relkind IN ('r', 'p') AND c.relname LIKE 'whatsmeow\\_%' "
    "GROUP BY n.nspname, n.oid, c.relname, c.oid ORDER BY 1, 2"
)


def addresses_of(keys: Iterable[str | None], lids: Iterable[str | None]) -> list[str]:
    """The addresses (``pn:<digits>``, ``lid:<digits>``) of contact keys (``+52…``,
    ``lid:…``; simulator keys name no WhatsApp user) and LIDs."""
    found: list[str] = []
    for key in keys:
        if key and key.startswith("+") and key[1:].isdigit():
            digits = key[1:]
            found.append(f"pn:{digits}")
            mobile = _MX_MOBILE.match(digits)
            if mobile:
                found.append(f"pn:521{mobile.group(1)}")
        elif key and key.startswith("lid:"):
            found.append(f"lid:{key.removeprefix('lid:').split('.', 1)[0]}")
    found += [f"lid:{lid.split('.', 1)[0]}" for lid in lids if lid]
    return list(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class _Schema:
    name: str
    tables: tuple[StoreTable, ...]
    devices: bool  # has whatsmeow_device (the business's own numbers)
    lid_map: bool


async def _schemas(session: AsyncSession) -> list[_Schema]:
    found: dict[str, list[StoreTable]] = defaultdict(list)
    devices: set[str] = set()
    for row in await session.execute(_DISCOVER):
        if not row.allowed:
            if row.table in _BY_NAME or row.table == "whatsmeow_device":
                log.warning("privacy.store_not_reachable", schema=row.schema, table=row.table,
                            reason="the app's database user may not read and delete there")
            continue
        if row.table == "whatsmeow_device":
            devices.add(row.schema)
        table = _BY_NAME.get(row.table)
        if table is not None and {c for c, _ in table.columns} <= set(row.columns):
            found[row.schema].append(table)
    return [_Schema(name, tuple(tables), name in devices,
                    any(t.table == "whatsmeow_lid_map" for t in tables))
            for name, tables in found.items()]


def _qualified(schema: str, table: str) -> str:
    return f'"{schema.replace(chr(34), chr(34) * 2)}".{table}'


async def _own(session: AsyncSession, schema: _Schema) -> set[str]:
    """The business's own numbers and LIDs in this store (never erased)."""
    if not schema.devices:
        return set()
    device = StoreTable("whatsmeow_device", ())
    rows = await session.execute(text(
        f"SELECT {device.address('j', 'jid')}, {device.address('l', 'jid')} FROM ("
        "SELECT to_jsonb(d)->>'jid' AS j, to_jsonb(d)->>'lid' AS l "
        f"FROM {_qualified(schema.name, 'whatsmeow_device')} d) t"))
    return {a for row in rows for a in row if a}


async def _widen(session: AsyncSession, schemas: list[_Schema],
                 owners: dict[str, uuid.UUID]) -> None:
    """Add the LIDs whatsmeow maps the customer's numbers to (and the other way round)."""
    lid_map = _BY_NAME["whatsmeow_lid_map"]
    for schema in schemas:
        if not schema.lid_map:
            continue
        rows = await session.execute(text(
            f"SELECT {lid_map.address('pn', 'pn')} AS pn, {lid_map.address('lid', 'lid')} "
            f"AS lid FROM {_qualified(schema.name, 'whatsmeow_lid_map')} t "
            f"WHERE {lid_map.where()}"), {"addresses": sorted(owners)})
        for row in rows:
            owner = owners.get(row.pn) or owners[row.lid]
            owners.setdefault(row.pn, owner)
            owners.setdefault(row.lid, owner)


async def erase_store(
    session: AsyncSession, owners: dict[str, uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    """Inside the erasure's transaction: delete the rows naming these addresses (address
    → the contact it belongs to) from every store schema. Returns contact → table → rows
    deleted."""
    counts: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    schemas = await _schemas(session) if owners else []
    if not schemas:
        return counts
    owners = dict(owners)
    await _widen(session, schemas, owners)
    for schema in schemas:
        mine = set(owners) - await _own(session, schema)
        if not mine:
            continue
        for table in schema.tables:
            rows = await session.execute(text(
                f"DELETE FROM {_qualified(schema.name, table.table)} t WHERE {table.where()} "
                f"RETURNING {table.owner()}"), {"addresses": sorted(mine)})
            for (row_owners,) in rows:
                for contact_id in {owners[a] for a in row_owners or [] if a in mine}:
                    counts[contact_id][table.table] += 1
    return counts


async def export_store(session: AsyncSession, addresses: list[str]) -> list[dict[str, Any]]:
    """What whatsmeow's contact entries say of the customer (push name, names from the
    business phone's address book), per store schema; keys and sessions are left out."""
    if not addresses:
        return []
    contacts = _BY_NAME["whatsmeow_contacts"]
    schemas = await _schemas(session)
    owners = {a: uuid.UUID(int=0) for a in addresses}
    await _widen(session, schemas, owners)
    out: list[dict[str, Any]] = []
    for schema in schemas:
        if contacts not in schema.tables:
            continue
        rows = await session.execute(text(
            f"SELECT jsonb_build_object('schema', CAST(:schema AS text)) || to_jsonb(t) "
            f"FROM {_qualified(schema.name, contacts.table)} t WHERE {contacts.where()} "
            "ORDER BY t.our_jid, t.their_jid"),
            {"addresses": sorted(owners), "schema": schema.name})
        out += [r[0] for r in rows]
    return out
