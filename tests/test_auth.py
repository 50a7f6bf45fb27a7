"""Staff login: tokens, cookies, roles, throttling, the users CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from bot.wiring.runtime import Runtime
from handoff.auth import InvalidUser, UserExists
from handoff.roles import Role


async def test_login_me_logout(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await runtime.auth.create_user(
        email="Ana@Seguros.MX", name="Ana", role=Role.AGENT, password="una-clave-larga"
    )
    bad = await client.post(
        "/api/v1/auth/login", json={"email": "ana@seguros.mx", "password": "nope"}
    )
    assert bad.status_code == 401
    ok = await client.post(
        "/api/v1/auth/login", json={"email": "ana@seguros.mx", "password": "una-clave-larga"}
    )
    assert ok.status_code == 200
    body = ok.json()
    assert body["token_type"] == "bearer" and body["user"]["role"] == "agent"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    me = await client.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 200 and me.json()["email"] == "ana@seguros.mx"
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401


async def test_unauthenticated_and_garbage_tokens(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/auth/me")).status_code == 401
    garbage = {"Authorization": "Bearer " + "x" * 500}
    assert (await client.get("/api/v1/auth/me", headers=garbage)).status_code == 401
    malformed = await client.post("/api/v1/auth/login", json={"email": "a"})
    assert malformed.status_code == 422


async def test_login_is_rate_limited(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await runtime.auth.create_user(
        email="beto@seguros.mx", name="Beto", role=Role.AGENT, password="clave-correcta"
    )
    for _ in range(5):
        r = await client.post(
            "/api/v1/auth/login", json={"email": "beto@seguros.mx", "password": "mala"}
        )
        assert r.status_code == 401
    blocked = await client.post(
        "/api/v1/auth/login", json={"email": "beto@seguros.mx", "password": "clave-correcta"}
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


async def test_user_validation(runtime: Runtime) -> None:
    with pytest.raises(InvalidUser):
        await runtime.auth.create_user(email="no-email", name="X", role=Role.AGENT,
                                       password="largo-largo")
    with pytest.raises(InvalidUser):
        await runtime.auth.create_user(email="x@y.mx", name="X", role=Role.AGENT, password="corta")
    await runtime.auth.create_user(email="x@y.mx", name="X", role=Role.AGENT, password="largo-1234")
    with pytest.raises(UserExists):
        await runtime.auth.create_user(email="X@y.mx", name="X", role=Role.AGENT,
                                       password="largo-1234")


async def test_login_page_sets_cookie_and_rejects_open_redirect(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await runtime.auth.create_user(
        email="sup@seguros.mx", name="Sup", role=Role.SUPERVISOR, password="clave-super"
    )
    page = await client.get("/login")
    assert page.status_code == 200 and "Entrar" in page.text
    r = await client.post(
        "/login",
        data={"email": "sup@seguros.mx", "password": "clave-super", "next": "//evil.example"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert "atiende_session" in r.headers["set-cookie"]
    assert "httponly" in r.headers["set-cookie"].lower()


def test_users_create_cli(database_url: str, redis_url: str, tmp_path: os.PathLike[str]) -> None:
    env = {
        **os.environ, "ATIENDE_DATABASE_URL": database_url, "ATIENDE_REDIS_URL": redis_url,
        "ATIENDE_ENV": "test", "ATIENDE_DATA_DIR": str(tmp_path),
    }
    args = [sys.executable, "-m", "bot", "users", "create", "--email", "admin@seguros.mx",
            "--name", "Admin", "--role", "admin", "--password", "clave-admin-1"]
    first = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "created admin admin@seguros.mx" in first.stdout
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "already exists" in again.stderr
