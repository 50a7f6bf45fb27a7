"""whatsmeow's session store is customer data too: its tables, created by the real
whatsmeow (neonize 0.5.2, offline) in their own schema and role as in production, hold a
customer's number, LID and push name in every form whatsmeow writes them. The export
lists whatsmeow's contact entries; the erasure deletes the customer's rows in every store
schema and keeps the other customers' and the business's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from bot.channels.wa_events import ConnectionEvent, ConnState
from bot.privacy import CustomerRef
from bot.privacy.whatsmeow import addresses_of
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.audit import Actor
from knowledge.embeddings import Embedder
from tests.channels.real_store import SCHEMA, RealStore, provisioned_store
from tests.privacy.scan import database_hits

pytestmark = pytest.mark.neonize_real

BUSINESS, DEVICE = "+525511110000", "5215511110000:4@s.whatsapp.net"
OWN_LID = "66660000000000"
PHONE, WA, LID = "+525512340001", "5215512340001", "77770000000001"  # WhatsApp keeps the 1
OTHER_PHONE, OTHER_WA, OTHER_LID = "+525512340002", "5215512340002", "88880000000002"
GROUP = "120363000000000001@g.us"
OLD_SCHEMA = "whatsmeow_viejo"  # tables of another store schema (an earlier setting)
NEEDLES = ["5512340001", LID, "Quiñones", "Vale Q"]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[RealStore]:
    """The store's schema and role, and whatsmeow's own tables in it (a number's client
    creates them before it dials; the dial fails offline)."""
    async with provisioned_store(database_url) as real:
        session = real.session(BUSINESS)
        await session.start()
        try:
            event = await asyncio.wait_for(session.events.get(), 60)
        finally:
            await session.stop()
        assert isinstance(event, ConnectionEvent) and event.state is ConnState.FAILED, event
        assert await real.all_closed()
        assert {s for s, _ in real.tables()} == {SCHEMA}
        yield real


@pytest.fixture
async def quiet_runtime(
    settings: Settings, database_url: str, redis_url: str, kb_embedder: Embedder
) -> AsyncIterator[Runtime]:
    rt = await Runtime.create(settings, database_url=database_url, redis_url=redis_url,
                              embedder=kb_embedder)
    yield rt
    await rt.close()


def _insert(conn: psycopg.Connection[Any], schema: str, table: str, **row: Any) -> None:
    conn.execute(sql.SQL("INSERT INTO {}.{} ({}) VALUES ({})").format(
        sql.Identifier(schema), sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(c) for c in row),
        sql.SQL(", ").join(sql.Placeholder(c) for c in row)), row)


def _person(conn: psycopg.Connection[Any], wa: str, lid: str, name: str, push: str) -> None:
    """What whatsmeow keeps of one customer, in the forms it writes them."""
    jid, lid_jid, key = f"{wa}@s.whatsapp.net", f"{lid}@lid", b"\x09" * 32
    _insert(conn, SCHEMA, "whatsmeow_contacts", our_jid=DEVICE, their_jid=jid,
            first_name=name.split()[0], full_name=name, push_name=push)
    _insert(conn, SCHEMA, "whatsmeow_contacts", our_jid=DEVICE, their_jid=lid_jid,
            push_name=push)
    _insert(conn, SCHEMA, "whatsmeow_chat_settings", our_jid=DEVICE, chat_jid=jid, pinned=True)
    _insert(conn, SCHEMA, "whatsmeow_message_secrets", our_jid=DEVICE, chat_jid=jid,
            sender_jid=DEVICE.split(":")[0] + "@s.whatsapp.net", message_id=f"3EB0{wa}",
            key=key)
    _insert(conn, SCHEMA, "whatsmeow_message_secrets", our_jid=DEVICE, chat_jid=lid_jid,
            sender_jid=lid_jid, message_id=f"3EB1{wa}", key=key)
    _insert(conn, SCHEMA, "whatsmeow_privacy_tokens", our_jid=DEVICE, their_jid=jid,
            token=key, timestamp=1)
    _insert(conn, SCHEMA, "whatsmeow_lid_map", lid=lid, pn=wa)
    for address in (f"{wa}:0", f"{wa}:7", f"{wa}.0:3", f"{lid}_1:0"):
        _insert(conn, SCHEMA, "whatsmeow_sessions", our_jid=DEVICE, their_id=address,
                session=key)
        _insert(conn, SCHEMA, "whatsmeow_identity_keys", our_jid=DEVICE, their_id=address,
                identity=key)
    _insert(conn, SCHEMA, "whatsmeow_sender_keys", our_jid=DEVICE, chat_id=GROUP,
            sender_id=f"{wa}:7", sender_key=key)
    _insert(conn, SCHEMA, "whatsmeow_retry_buffer", our_jid=DEVICE, chat_jid=jid,
            message_id=f"3EB2{wa}", format="message", plaintext=f"Hola {name}".encode(),
            timestamp=1)
    _insert(conn, OLD_SCHEMA, "whatsmeow_contacts", our_jid=DEVICE,
            their_jid=f"{wa}:2@s.whatsapp.net", full_name=name)


def _seed(store: RealStore) -> None:
    store.add_device(DEVICE)
    with store.admin() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(OLD_SCHEMA)))
        conn.execute(sql.SQL("CREATE TABLE {}.whatsmeow_contacts (LIKE {}.whatsmeow_contacts "
                             "INCLUDING ALL)").format(sql.Identifier(OLD_SCHEMA),
                                                      sql.Identifier(SCHEMA)))
        _person(conn, WA, LID, "Valeria Quiñones", "Vale Q")
        _person(conn, OTHER_WA, OTHER_LID, "Otrocliente Pérez", "Otro P")
        # the business's own: its phone's and its own LID's sessions, its LID, a group
        own = DEVICE.split(":")[0]
        for address in (f"{own}:0", f"{OWN_LID}_1:0"):
            _insert(conn, SCHEMA, "whatsmeow_sessions", our_jid=DEVICE, their_id=address,
                    session=b"\x01")
        _insert(conn, SCHEMA, "whatsmeow_lid_map", lid=OWN_LID, pn=own)
        _insert(conn, SCHEMA, "whatsmeow_chat_settings", our_jid=DEVICE, chat_jid=GROUP,
                archived=True)
        # our side: the customer by number only (whatsmeow maps them to their LID), the
        # other customer with their LID known
        conn.execute("INSERT INTO contacts (id, phone_e164, name) VALUES "
                     "(gen_random_uuid(), %s, 'Valeria Quiñones')", (PHONE,))
        conn.execute("INSERT INTO contacts (id, phone_e164, wa_lid, name) VALUES "
                     "(gen_random_uuid(), %s, %s, 'Otrocliente Pérez')", (OTHER_PHONE, OTHER_LID))


def _rows(store: RealStore, *needles: str) -> dict[str, int]:
    """Rows per store table (both schemas) with one of ``needles`` in any column."""
    found: dict[str, int] = {}
    with store.admin() as conn:
        tables = conn.execute("SELECT schemaname, tablename FROM pg_tables WHERE tablename "
                              "LIKE 'whatsmeow\\_%%' ORDER BY 1, 2").fetchall()
        for schema, table in tables:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}.{} t WHERE t::text LIKE ANY(%s)").format(
                    sql.Identifier(schema), sql.Identifier(table)),
                ([f"%{n}%" for n in needles],)).fetchone()
            if row and row[0]:
                found[f"{schema}.{table}"] = int(row[0])
    return found


def test_addresses_are_the_forms_whatsmeow_names_a_customer_by() -> None:
    assert addresses_of([PHONE], [None]) == [f"pn:{PHONE[1:]}", f"pn:{WA}"]
    assert addresses_of(["sim:+525512340001", "lid:123"], ["456"]) == ["lid:123", "lid:456"]
    assert addresses_of(["+14155550100"], []) == ["pn:14155550100"]


async def test_export_lists_and_erasure_deletes_what_whatsmeow_holds(
    store: RealStore, quiet_runtime: Runtime, database_url: str,
) -> None:
    runtime = quiet_runtime
    _seed(store)
    other_before = _rows(store, OTHER_WA, OTHER_LID)
    assert sum(other_before.values()) == 18

    document = await runtime.privacy.exporter.document(CustomerRef(key=PHONE))
    entries = document["data"]["whatsmeow_contacts"]
    assert sorted((e["schema"], e["their_jid"], e["push_name"]) for e in entries) == [
        (SCHEMA, f"{WA}@s.whatsapp.net", "Vale Q"), (SCHEMA, f"{LID}@lid", "Vale Q"),
        (OLD_SCHEMA, f"{WA}:2@s.whatsapp.net", None)]

    erased = await runtime.privacy.eraser.erase(CustomerRef(key=PHONE), actor=Actor.cli(),
                                                source="cli")
    assert {k: v for k, v in erased.counts.items() if k.startswith("whatsmeow_")} == {
        "whatsmeow_contacts": 3, "whatsmeow_chat_settings": 1,
        "whatsmeow_message_secrets": 2, "whatsmeow_privacy_tokens": 1,
        "whatsmeow_retry_buffer": 1, "whatsmeow_sessions": 4, "whatsmeow_identity_keys": 4,
        "whatsmeow_sender_keys": 1, "whatsmeow_lid_map": 1}

    assert _rows(store, WA, LID) == {}
    assert database_hits(database_url, NEEDLES) == []
    # the other customer and the business keep every row
    assert _rows(store, OTHER_WA, OTHER_LID) == other_before
    own = DEVICE.split(":")[0]
    with store.admin() as conn:
        kept = conn.execute(
            f"SELECT (SELECT count(*) FROM {SCHEMA}.whatsmeow_device WHERE jid = %(d)s), "
            f"(SELECT array_agg(their_id ORDER BY their_id) FROM {SCHEMA}.whatsmeow_sessions "
            f"WHERE their_id NOT LIKE %(other)s), "
            f"(SELECT array_agg(pn ORDER BY pn) FROM {SCHEMA}.whatsmeow_lid_map), "
            f"(SELECT array_agg(chat_jid ORDER BY chat_jid) FROM "
            f"{SCHEMA}.whatsmeow_chat_settings)",
            {"d": DEVICE, "other": f"{OTHER_WA}%"}).fetchone()
    assert kept == (1, [f"{own}:0", f"{OWN_LID}_1:0", f"{OTHER_LID}_1:0"],
                    [own, OTHER_WA], [GROUP, f"{OTHER_WA}@s.whatsapp.net"])
