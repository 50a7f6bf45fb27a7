"""Backup and restore: a round trip through the real ``atiende backup`` commands."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from bot.api import create_app
from bot.infra.backup import BackupError, read_manifest
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.roles import Role
from tests.conftest import ask

SNAPSHOT = (
    "SELECT (SELECT count(*) FROM contacts), (SELECT count(*) FROM conversations), "
    "(SELECT count(*) FROM messages), (SELECT count(*) FROM users), "
    "(SELECT string_agg(text, '|' ORDER BY seq) FROM messages)"
)


def _cli(args: list[str], database_url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ, "ATIENDE_DATABASE_URL": database_url, "ATIENDE_DATA_DIR": str(data_dir),
        "ATIENDE_ENV": "test", "ATIENDE_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True,
        timeout=120,
    )


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
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url="http://t"
        ) as client:
            yield runtime, client
    finally:
        await runtime.close()


async def test_backup_round_trip_restores_data_and_media(
    settings: Settings, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    async with _app(settings, database_url, redis_url) as (runtime, client):
        await runtime.auth.create_user(
            email="dueña@example.mx", name="Dueña", role=Role.ADMIN, password="contraseña-segura"
        )
        await ask(client, "hola, buenas tardes 👋", phone="+5215511110000", name="Lupita")
        await ask(client, "quiero hablar con un asesor", phone="+5215511110001")
    data_dir = tmp_path / "data"
    media = data_dir / "media" / "voice" / "ab"
    media.mkdir(parents=True)
    (media / "nota.ogg").write_bytes(b"OggS fake voice bytes")
    with psycopg.connect(database_url) as conn:
        before = conn.execute(SNAPSHOT).fetchone()

    backup = tmp_path / "respaldo.tar.gz"
    made = _cli(["backup", "create", str(backup)], database_url, data_dir)
    assert made.returncode == 0, made.stderr
    assert "messages 4" in made.stdout and "media files 1" in made.stdout
    counts = read_manifest(backup)["counts"]
    assert isinstance(counts, dict)
    assert {k: counts[k] for k in ("contacts", "conversations", "messages", "users")} == {
        "contacts": 2, "conversations": 2, "messages": 4, "users": 1,
    }

    # disaster: data deleted after the backup, media lost
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM conversations")
        conn.execute("DELETE FROM contacts")
        conn.execute("DELETE FROM users")
    (media / "nota.ogg").unlink()

    with psycopg.connect(database_url) as busy:  # a server still connected: refused
        busy.execute("SELECT 1")
        refused = _cli(["backup", "restore", "--yes", str(backup)], database_url, data_dir)
        assert refused.returncode == 1 and "stop the server" in refused.stderr
    restored = _cli(["backup", "restore", "--yes", str(backup)], database_url, data_dir)
    assert restored.returncode == 0, restored.stderr
    with psycopg.connect(database_url) as conn:
        after = conn.execute(SNAPSHOT).fetchone()
        owner = conn.execute(
            "SELECT owner FROM conversations c JOIN contacts k ON k.id = c.contact_id "
            "WHERE k.phone_e164 = 'sim:+525511110001'"  # the simulator's own contact
        ).fetchone()
    assert after == before
    assert owner == ("queued",)
    assert (media / "nota.ogg").read_bytes() == b"OggS fake voice bytes"
    # the restored database serves the bot and the staff again
    async with _app(settings, database_url, redis_url) as (runtime, client):
        again = await ask(client, "hola de nuevo", phone="+5215511110000")
        assert again["status"] == "processed" and again["replies"]
        login = await client.post(
            "/api/v1/auth/login",
            json={"email": "dueña@example.mx", "password": "contraseña-segura"},
        )
        assert login.status_code == 200


async def test_restore_refuses_a_file_that_is_not_a_backup(
    database_url: str, tmp_path: Path
) -> None:
    bogus = tmp_path / "otro.tar.gz"
    with tarfile.open(bogus, "w:gz") as tar:
        readme = tmp_path / "README"
        readme.write_text("hola")
        tar.add(readme, arcname="README")
    with pytest.raises(BackupError, match="not an Atiende backup"):
        read_manifest(bogus)
    done = _cli(["backup", "restore", "--yes", str(bogus)], database_url, tmp_path)
    assert done.returncode == 1 and "not an Atiende backup" in done.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() != (0,)
