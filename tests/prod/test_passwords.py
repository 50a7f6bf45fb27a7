"""Staff passwords: change your own (all your sessions end), admin reset and deactivation
(sessions end at once), and a password change racing a login leaves no valid old token."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from bot.wiring.runtime import Runtime
from handoff.auth import AuthError
from handoff.roles import Role

PASSWORD = "contraseña-segura"


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_change_own_password_revokes_every_session(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await runtime.auth.create_user(email="ana@seguros.mx", name="Ana", role=Role.AGENT,
                                   password=PASSWORD)
    laptop, phone = await login(client, "ana@seguros.mx"), await login(client, "ana@seguros.mx")
    wrong = await client.post("/api/v1/auth/password", headers=laptop,
                              json={"current_password": "not-it!!", "new_password": "otra-clave-1"})
    assert wrong.status_code == 403
    short = await client.post("/api/v1/auth/password", headers=laptop,
                              json={"current_password": PASSWORD, "new_password": "corta"})
    assert short.status_code == 422
    done = await client.post("/api/v1/auth/password", headers=laptop,
                             json={"current_password": PASSWORD, "new_password": "otra-clave-1"})
    assert done.status_code == 204
    for headers in (laptop, phone):
        assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401
    assert (await client.post("/api/v1/auth/login", json={
        "email": "ana@seguros.mx", "password": PASSWORD})).status_code == 401
    assert (await client.get("/api/v1/auth/me",
                             headers=await login(client, "ana@seguros.mx", "otra-clave-1"))
            ).status_code == 200


async def test_admin_resets_and_deactivates(
    client: httpx.AsyncClient, runtime: Runtime, auth_headers: Any
) -> None:
    admin = await auth_headers("admin")
    beto = await runtime.auth.create_user(email="beto@seguros.mx", name="Beto",
                                          role=Role.AGENT, password=PASSWORD)
    session = await login(client, "beto@seguros.mx")
    agent_try = await client.post(f"/api/v1/users/{beto.id}/password", headers=session,
                                  json={"password": "nueva-clave-1"})
    assert agent_try.status_code == 403
    reset = await client.post(f"/api/v1/users/{beto.id}/password", headers=admin,
                              json={"password": "nueva-clave-1"})
    assert reset.status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=session)).status_code == 401
    session = await login(client, "beto@seguros.mx", "nueva-clave-1")
    off = await client.patch(f"/api/v1/users/{beto.id}", headers=admin, json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    assert (await client.get("/api/v1/auth/me", headers=session)).status_code == 401
    assert (await client.post("/api/v1/auth/login", json={
        "email": "beto@seguros.mx", "password": "nueva-clave-1"})).status_code == 401
    audit = (await client.get("/api/v1/admin/audit?action=users.*", headers=admin)).json()
    assert {"users.password_reset", "users.update"} <= {a["action"] for a in audit}


async def test_a_password_change_racing_logins_leaves_no_old_token(runtime: Runtime) -> None:
    user = await runtime.auth.create_user(email="caro@seguros.mx", name="Caro",
                                          role=Role.AGENT, password=PASSWORD)
    current = PASSWORD
    for round_ in range(4):
        new = f"clave-nueva-{round_}"

        async def try_login(password: str = current, client: str = f"c{round_}") -> str | None:
            try:
                return (await runtime.auth.login("caro@seguros.mx", password,
                                                 client=client)).token
            except AuthError:
                return None

        results = await asyncio.gather(
            *[try_login() for _ in range(3)],
            runtime.auth.change_password(user.id, current=current, new=new),
        )
        for token in results[:3]:
            if token is not None:  # logged in with the old password: revoked by the change
                assert await runtime.auth.resolve(token) is None
        current = new
    assert (await runtime.auth.login("caro@seguros.mx", current, client="x")).token
