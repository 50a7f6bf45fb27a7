"""API keys: ``atiende apikeys create`` prints a key once; it is a bearer token with its
role until revoked; stored hashed; last use shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg

from bot.wiring.runtime import Runtime


def cli(
    database_url: str, redis_url: str, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ATIENDE_DATABASE_URL": database_url, "ATIENDE_REDIS_URL": redis_url,
           "ATIENDE_DATA_DIR": str(tmp_path), "ATIENDE_LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "bot", "apikeys", *args], env=env,
                          capture_output=True, text=True, timeout=120)


async def test_cli_key_works_as_bearer_until_revoked(
    client: httpx.AsyncClient, runtime: Runtime, database_url: str, redis_url: str,
    tmp_path: Path,
) -> None:
    made = cli(database_url, redis_url, tmp_path, "create", "--name", "crm-sync",
               "--role", "supervisor")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("atk_") and "not shown again" in made.stderr
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT key_hash, prefix FROM api_keys").fetchall()
    assert len(stored) == 1 and key not in stored[0][0] and key.startswith(stored[0][1])

    bearer = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/conversations?owner=queued",
                              headers=bearer)).status_code == 200
    assert (await client.get("/api/v1/users", headers=bearer)).status_code == 403  # its role
    listed = cli(database_url, redis_url, tmp_path, "list")
    assert "crm-sync" in listed.stdout and "last use never" not in listed.stdout
    assert key not in listed.stdout

    revoked = cli(database_url, redis_url, tmp_path, "revoke", "crm-sync")
    assert revoked.returncode == 0, revoked.stderr
    assert (await client.get("/api/v1/conversations", headers=bearer)).status_code == 401


async def test_admins_manage_keys_over_the_api(
    client: httpx.AsyncClient, auth_headers: object
) -> None:
    admin = await auth_headers("admin")  # type: ignore[operator]
    made = await client.post("/api/v1/apikeys", headers=admin,
                             json={"name": "zapier", "role": "agent"})
    assert made.status_code == 201
    key = made.json()["key"]
    twice = await client.post("/api/v1/apikeys", headers=admin,
                              json={"name": "zapier", "role": "admin"})
    assert twice.status_code == 409 and "already exists" in twice.text
    listed = (await client.get("/api/v1/apikeys", headers=admin)).json()
    assert [k["name"] for k in listed] == ["zapier"] and "key" not in listed[0]
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200 and me.json()["role"] == "agent"
    assert (await client.get("/api/v1/apikeys", headers=admin)).json()[0]["last_used_at"]
    assert (await client.delete(f"/api/v1/apikeys/{made.json()['id']}",
                                headers=admin)).status_code == 204
    assert (await client.get("/api/v1/auth/me",
                             headers={"Authorization": f"Bearer {key}"})).status_code == 401
    assert (await client.delete(f"/api/v1/apikeys/{made.json()['id']}",
                                headers=admin)).status_code == 404  # revoked once only
    assert (await client.get("/api/v1/auth/me",
                             headers={"Authorization": "Bearer atk_forged"})).status_code == 401
