"""The audit log: logins (ok, failed), logout and CLI user creation are recorded;
only admins read it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from bot.wiring.runtime import Runtime
from handoff.audit import Actor


async def test_logins_and_logout_are_recorded_and_only_admins_read_them(
    client: httpx.AsyncClient, runtime: Runtime, auth_headers  # type: ignore[no-untyped-def]
) -> None:
    admin = await auth_headers("admin", email="jefa@example.mx")
    agent = await auth_headers("agent", email="agente@example.mx")
    bad = await client.post(
        "/api/v1/auth/login", json={"email": "Agente@example.mx", "password": "nop"}
    )
    assert bad.status_code == 401
    assert (await client.post("/api/v1/auth/logout", headers=agent)).status_code == 204

    assert (await client.get("/api/v1/admin/audit")).status_code == 401
    other_agent = await auth_headers("agent")
    assert (await client.get("/api/v1/admin/audit", headers=other_agent)).status_code == 403
    r = await client.get("/api/v1/admin/audit", headers=admin, params={"action": "auth.*"})
    assert r.status_code == 200
    entries = r.json()
    actions = [(e["action"], e["actor_email"]) for e in entries]
    assert ("auth.logout", "agente@example.mx") in actions
    assert ("auth.login_failed", "agente@example.mx") in actions
    assert ("auth.login", "jefa@example.mx") in actions
    assert entries == sorted(entries, key=lambda e: -e["id"])  # newest first
    failed = next(e for e in entries if e["action"] == "auth.login_failed")
    assert failed["actor_kind"] == "anonymous" and "nop" not in str(failed)  # no password
    # exact filter and paging
    only = await client.get("/api/v1/admin/audit", headers=admin, params={"action": "auth.logout"})
    assert {e["action"] for e in only.json()} == {"auth.logout"}
    page = await client.get(
        "/api/v1/admin/audit", headers=admin, params={"before_id": entries[0]["id"], "limit": 1}
    )
    assert [e["id"] for e in page.json()] == [entries[1]["id"]]


async def test_other_features_record_through_the_service(runtime: Runtime) -> None:
    async with runtime.sessions() as session, session.begin():
        await runtime.audit.record_in(
            session, Actor.system(), "kb.import", "kb:demo", {"articles": 12}
        )
    await runtime.audit.record(Actor.cli(), "backup.create", "file:respaldo.tar.gz")
    entries = await runtime.audit.entries(action="kb.import")
    assert [(e.actor_kind, e.target, e.details) for e in entries] == [
        ("system", "kb:demo", {"articles": 12})
    ]
    assert len(await runtime.audit.entries(limit=10)) == 2


def test_users_create_cli_is_audited(database_url: str, redis_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ, "ATIENDE_DATABASE_URL": database_url, "ATIENDE_REDIS_URL": redis_url,
        "ATIENDE_DATA_DIR": str(tmp_path), "ATIENDE_ENV": "test", "ATIENDE_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "users", "create", "--email", "nueva@example.mx",
         "--name", "Nueva", "--role", "agent", "--password", "contraseña-segura"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT actor_kind, action, details->>'email' FROM audit_log"
        ).fetchall()
    assert row == [("cli", "users.create", "nueva@example.mx")]
