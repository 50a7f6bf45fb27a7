"""Erasures survive a restore: ``atiende backup restore`` re-applies the erasure log of the
database it replaces (or a log file when that database is lost)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psycopg

from bot.api import create_app
from bot.db import migrate
from bot.messages import MessageKind
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from tests.conftest import ask
from tests.ops.test_backup import _cli
from tests.privacy.conftest import staff_headers
from tests.privacy.scan import database_hits
from tests.privacy.seeding import chunks, ogg_with

PHONE = "+525577770001"
NAME = "Berenice Respaldo"


@asynccontextmanager
async def _app(settings: Settings, database_url: str, redis_url: str) -> AsyncIterator[
    tuple[Runtime, httpx.AsyncClient]
]:
    runtime = await Runtime.create(settings, database_url=database_url, redis_url=redis_url)
    runtime.start_worker()

    async def factory() -> Runtime:
        return runtime

    api = create_app(factory, run_worker=False)
    api.state.runtime = runtime
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api),
                                     base_url="http://t") as client:
            client.cookies.set("atiende_sim", f"s-{uuid.uuid4().hex}")
            yield runtime, client
    finally:
        await runtime.close()


async def _customer_then_backup(
    settings: Settings, database_url: str, redis_url: str, backup: Path
) -> tuple[Path, str]:
    """A simulator customer who opted out and sent a voice note; a backup; then their
    erasure. Returns the note's file and the contact id."""
    async with _app(settings, database_url, redis_url) as (runtime, client):
        await ask(client, "hola, soy Berenice", phone=PHONE, name=NAME)
        outcome = await ask(client, "BAJA por favor", phone=PHONE, name=NAME)
        ref = await runtime.media.save(chunks(ogg_with(NAME)), kind=MessageKind.VOICE,
                                       mime_type="audio/ogg")
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO messages (id, conversation_id, direction, author, kind, channel, "
                "media, status) VALUES (%s, %s, 'in', 'customer', 'voice', 'simulator', "
                "jsonb_build_object('key', %s::text), 'processed')",
                (uuid.uuid4(), uuid.UUID(str(outcome["conversation_id"])), ref.key))
        note = settings.data_dir / "media" / ref.key
        assert note.is_file()
        made = _cli(["backup", "create", str(backup)], database_url, settings.data_dir)
        assert made.returncode == 0, made.stderr
        admin = await staff_headers(runtime, client)
        erased = await client.delete(f"/api/v1/contacts/sim:{PHONE}", headers=admin)
        assert erased.status_code == 200, erased.text
        assert erased.json()["opt_out_kept"] is True
    assert not note.exists() and database_hits(database_url, [NAME, PHONE[3:]]) == []
    return note, str(erased.json()["contact_id"])


def _erased_again(database_url: str, note: Path, contact_id: str) -> None:
    assert database_hits(database_url, [NAME, PHONE[3:]]) == []
    assert not note.exists()  # the restored media folder brought it back; deleted again
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT erased_at IS NOT NULL, opted_out FROM contacts WHERE id = %s",
                           (contact_id,)).fetchone()
        kept = conn.execute(
            "SELECT count(*) FROM privacy_optouts WHERE phone_hash = "
            "privacy_phone_hash(%s)", (f"sim:{PHONE}",)).fetchone()
    assert row == (True, True) and kept == (1,)


async def test_restore_reapplies_the_erasures_of_the_database_it_replaces(
    settings: Settings, database_url: str, redis_url: str, tmp_path: Path,
) -> None:
    backup = tmp_path / "respaldo.tar.gz"
    note, contact_id = await _customer_then_backup(settings, database_url, redis_url, backup)
    restored = _cli(["backup", "restore", "--yes", str(backup)], database_url, settings.data_dir)
    assert restored.returncode == 0, restored.stderr
    assert ("erasure log re-applied: 1 erasure(s), 1 contact(s) erased again, "
            "1 media object(s) deleted again, 1 opt-out(s) kept") in restored.stdout
    _erased_again(database_url, note, contact_id)
    assert not list(settings.data_dir.glob("erasure-log-*.jsonl"))  # applied: not kept
    # the customer writes again after the restore: a fresh contact, still opted out
    async with _app(settings, database_url, redis_url) as (_runtime, client):
        await ask(client, "hola otra vez", phone=PHONE, name=NAME)
    with psycopg.connect(database_url) as conn:
        fresh = conn.execute("SELECT id::text, opted_out FROM contacts WHERE phone_e164 = %s",
                             (f"sim:{PHONE}",)).fetchone()
    assert fresh is not None and fresh[0] != contact_id and fresh[1] is True


async def test_a_lost_database_is_restored_with_the_saved_erasure_log(
    settings: Settings, database_url: str, redis_url: str, tmp_path: Path, pg_admin_url: str,
) -> None:
    backup = tmp_path / "respaldo.tar.gz"
    note, contact_id = await _customer_then_backup(settings, database_url, redis_url, backup)
    log = tmp_path / "borrados.jsonl"
    saved = _cli(["contacts", "erasures", "--out", str(log)], database_url, settings.data_dir)
    assert saved.returncode == 0 and "1 erasure(s), 1 kept opt-out(s)" in saved.stdout, saved
    # the disk is lost: a new, empty database
    name = database_url.split("/")[3].split("?")[0]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    migrate(database_url)
    restored = _cli(["backup", "restore", "--yes", "--erasure-log", str(log), str(backup)],
                    database_url, settings.data_dir)
    assert restored.returncode == 0, restored.stderr
    assert "1 contact(s) erased again" in restored.stdout
    _erased_again(database_url, note, contact_id)
    bad = tmp_path / "malo.jsonl"
    bad.write_text('{"format": "atiende-erasure-log/1", "salt": null}\nno es json\n')
    refused = _cli(["backup", "restore", "--yes", "--erasure-log", str(bad), str(backup)],
                   database_url, settings.data_dir)
    assert refused.returncode == 1 and "malo.jsonl, line 2" in refused.stderr
