"""The database half of an erasure: one transaction that locks a batch of customers,
deletes or anonymises everything ``HOLDINGS`` lists and their rows of whatsmeow's session
store (``whatsmeow``), keeps their opt-outs as salted hashes and writes the erasure log
(with the audit entries) in the same commit.

Lock order: campaign recipients (``prepare``), then contacts, then conversations, the
order the inbound path and the campaign scheduler take them, so concurrent work waits
instead of deadlocking (and a deadlock that happens anyway is retried by the caller).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.privacy.holdings import HOLDINGS, Holding
from bot.privacy.records import ErasureRecord
from bot.privacy.values import numbers_of
from bot.privacy.whatsmeow import addresses_of, erase_store
from handoff.audit import Actor, AuditLog

__all__ = ["ContactChanged", "Draft", "erase_in", "existing_tables", "last_erasure"]

LOCK_TIMEOUT = "15s"


class ContactChanged(Exception):
    """A contact's number changed between reading and locking it (a LID merge): retry."""


@dataclass(slots=True)
class Draft:
    """One customer's erasure as written in the transaction."""

    erasure_id: uuid.UUID
    contact_id: uuid.UUID
    key: str | None
    hashes: list[str]
    opted_out: bool
    conversations: list[uuid.UUID] = field(default_factory=list)
    media_keys: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    lid: str | None = None  # the WhatsApp hidden-number id (``contacts.wa_lid``)


async def existing_tables(session: AsyncSession) -> frozenset[str]:
    """The tables of the current schema (entries for tables not created yet are skipped)."""
    rows = await session.execute(
        text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    )
    return frozenset(str(r[0]) for r in rows)


async def last_erasure(
    session: AsyncSession, *, key: str | None, contact_id: uuid.UUID | None
) -> Any:
    """The latest erasure of a contact id or of a contact key (by its salted hash), or
    None: what tells "erased" from "never stored"."""
    return (await session.execute(text(
        "SELECT id, contact_id, requested_at, state, counts, media_keys, opted_out "
        "FROM privacy_erasures WHERE contact_id = :cid OR key_hashes @> "
        "ARRAY[privacy_phone_hash(CAST(:key AS text))]::varchar[] "
        "ORDER BY requested_at DESC LIMIT 1"),
        {"cid": contact_id, "key": key or ""})).one_or_none()


async def erase_in(
    session: AsyncSession, contact_ids: list[uuid.UUID], *, actor: Actor, source: str,
    tables: frozenset[str],
) -> list[Draft]:
    """Inside the caller's transaction: erase these contacts (those already erased are
    skipped). Returns one draft per contact erased, its counts per table."""
    await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    seen = await _contacts(session, contact_ids, lock=False)
    if not seen:
        return []
    params = _params(seen, [])
    for holding in HOLDINGS:
        if holding.prepare and holding.table in tables:
            await session.execute(text(holding.prepare), params)
    drafts = await _contacts(session, [d.contact_id for d in seen], lock=True)
    before = {d.contact_id: d.key for d in seen}
    if any(before.get(d.contact_id) != d.key for d in drafts):
        raise ContactChanged("a contact's number changed while it was being erased")
    if not drafts:
        return []
    conversations = await _conversations(session, drafts)
    params = _params(drafts, conversations)
    await _media_keys(session, drafts, params)
    await _keep_opt_outs(session, drafts)
    await _erase_sessions(session, drafts)
    owners = _owners(drafts, conversations)
    for holding in HOLDINGS:
        if holding.table in tables:
            await _apply(session, holding, params, owners)
    await _log(session, drafts, actor=actor, source=source)
    return drafts


async def _contacts(
    session: AsyncSession, ids: list[uuid.UUID], *, lock: bool
) -> list[Draft]:
    suffix = " ORDER BY id FOR UPDATE" if lock else ""
    rows = await session.execute(text(
        "SELECT id, phone_e164, wa_lid, opted_out, "
        "array_remove(ARRAY[privacy_phone_hash(phone_e164), CASE WHEN wa_lid IS NOT NULL "
        "THEN privacy_phone_hash(left('lid:' || wa_lid, 20)) END], NULL) AS hashes "
        f"FROM contacts WHERE id = ANY(:ids) AND erased_at IS NULL{suffix}"), {"ids": ids})
    return [
        Draft(uuid.uuid4(), r.id, r.phone_e164, list(r.hashes), bool(r.opted_out),
              lid=r.wa_lid)
        for r in rows
    ]


async def _conversations(
    session: AsyncSession, drafts: list[Draft]
) -> dict[uuid.UUID, uuid.UUID]:
    """Conversation id → contact id, every row locked (what writes into them waits)."""
    by_id = {d.contact_id: d for d in drafts}
    rows = await session.execute(text(
        "SELECT id, contact_id FROM conversations WHERE contact_id = ANY(:ids) "
        "ORDER BY id FOR UPDATE"), {"ids": list(by_id)})
    found = {r.id: r.contact_id for r in rows}
    for conversation_id, contact_id in found.items():
        by_id[contact_id].conversations.append(conversation_id)
    return found


def _params(drafts: list[Draft], conversations: Any) -> dict[str, Any]:
    keys = [d.key for d in drafts if d.key]
    real, _ = numbers_of(keys)
    targets = [f"contact:{d.contact_id}" for d in drafts]
    targets += [f"conversation:{c}" for c in conversations]
    return {
        "contacts": [d.contact_id for d in drafts], "conversations": list(conversations),
        "keys": keys, "numbers": real, "targets": targets,
    }


def _owners(drafts: list[Draft], conversations: dict[uuid.UUID, uuid.UUID]) -> dict[str, Draft]:
    """Everything a row may be counted under (ids, numbers, audit targets) → its draft."""
    by_contact = {d.contact_id: d for d in drafts}
    owners: dict[str, Draft] = {}
    for draft in drafts:
        owners[str(draft.contact_id)] = draft
        owners[f"contact:{draft.contact_id}"] = draft
        if draft.key:
            owners[draft.key] = draft
    for conversation_id, contact_id in conversations.items():
        owners[str(conversation_id)] = by_contact[contact_id]
        owners[f"conversation:{conversation_id}"] = by_contact[contact_id]
    return owners


async def _media_keys(session: AsyncSession, drafts: list[Draft], params: dict[str, Any]) -> None:
    by_id = {d.contact_id: d for d in drafts}
    rows = await session.execute(text(
        "SELECT c.contact_id, m.media->>'key' AS key FROM messages m "
        "JOIN conversations c ON c.id = m.conversation_id "
        "WHERE m.conversation_id = ANY(:conversations) AND m.media->>'key' IS NOT NULL"),
        params)
    for row in rows:
        by_id[row.contact_id].media_keys.append(str(row.key))


async def _erase_sessions(session: AsyncSession, drafts: list[Draft]) -> None:
    """whatsmeow's rows about them (neonize numbers' session store), read by their number
    and LID before the contact loses both."""
    owners = {a: d.contact_id for d in drafts for a in addresses_of([d.key], [d.lid])}
    by_id = {d.contact_id: d for d in drafts}
    for contact_id, tables in (await erase_store(session, owners)).items():
        by_id[contact_id].counts.update(tables)


async def _keep_opt_outs(session: AsyncSession, drafts: list[Draft]) -> None:
    hashes = [h for d in drafts if d.opted_out for h in d.hashes]
    if hashes:
        await session.execute(text(
            "INSERT INTO privacy_optouts (phone_hash) SELECT unnest(CAST(:h AS text[])) "
            "ON CONFLICT DO NOTHING"), {"h": hashes})


def _statement(holding: Holding) -> str:
    table, where, owner = holding.table, holding.where, holding.owner
    if holding.scrub is None:
        return f"DELETE FROM {table} t WHERE {where} RETURNING {owner}"
    # the owner is read before the change (a scrub may empty the column it comes from)
    return (
        f"WITH hit AS (SELECT t.id AS hit_id, {owner} AS hit_owner FROM {table} t "
        f"WHERE {where} ORDER BY t.id FOR UPDATE) "
        f"UPDATE {table} t SET {holding.scrub} FROM hit WHERE t.id = hit.hit_id "
        "RETURNING hit.hit_owner"
    )


async def _apply(
    session: AsyncSession, holding: Holding, params: dict[str, Any], owners: dict[str, Draft]
) -> None:
    counts: dict[uuid.UUID, int] = defaultdict(int)
    by_contact: dict[uuid.UUID, Draft] = {}
    for (row_owners,) in await session.execute(text(_statement(holding)), params):
        drafts = {owners[o].contact_id: owners[o] for o in (row_owners or []) if o in owners}
        for contact_id, draft in drafts.items():
            counts[contact_id] += 1
            by_contact[contact_id] = draft
    for contact_id, n in counts.items():
        by_contact[contact_id].counts[holding.table] = n


async def _log(session: AsyncSession, drafts: list[Draft], *, actor: Actor, source: str) -> None:
    await session.execute(insert(ErasureRecord), [
        {
            "id": d.erasure_id, "contact_id": d.contact_id, "key_hashes": d.hashes,
            "opted_out": d.opted_out, "source": source, "actor_kind": actor.kind,
            "actor_id": actor.id, "actor_email": actor.email, "state": "objects",
            "counts": d.counts, "conversation_ids": d.conversations,
            "media_keys": d.media_keys, "pending_keys": d.media_keys,
        }
        for d in drafts
    ])
    # who erased whom and when; what went, never what it was
    await AuditLog.record_many_in(session, actor, [
        ("contacts.erase", f"contact:{d.contact_id}",
         {"erasure_id": str(d.erasure_id), "source": source, "counts": d.counts,
          "media_objects": len(d.media_keys), "opt_out_kept": d.opted_out})
        for d in drafts
    ])
