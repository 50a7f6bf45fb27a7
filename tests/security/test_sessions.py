"""Sessions and passwords: reactivation does not revive old tokens, log out everywhere,
the idle timeout, weak and common passwords refused."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from bot.clock import FakeClock
from bot.infra.redis_adapter import RedisRateLimiter
from bot.wiring.runtime import Runtime
from handoff.auth import AuthService, InvalidUser
from handoff.roles import Role
from tests.security.conftest import PASSWORD, World


async def _token(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _me(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await client.get("/api/v1/auth/me", headers=headers)).status_code


async def test_reactivation_does_not_revive_old_tokens(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    email = world.agent_b.principal.email
    old = await _token(client, email)
    await runtime.inbox.update_user(world.agent_b.id, active=False)
    assert await _me(client, old) == 401
    await runtime.inbox.update_user(world.agent_b.id, active=True)
    assert await _me(client, old) == 401
    assert await _me(client, world.agent_b.headers) == 401
    assert await _me(client, await _token(client, email)) == 200


async def test_log_out_everywhere(client: httpx.AsyncClient, world: World) -> None:
    email = world.agent_a.principal.email
    laptop, phone = await _token(client, email), await _token(client, email)
    out = await client.post("/api/v1/auth/logout-everywhere", headers=laptop)
    assert out.status_code == 204
    for headers in (laptop, phone, world.agent_a.headers):
        assert await _me(client, headers) == 401
    assert await _me(client, world.agent_b.headers) == 200  # others are untouched
    assert await _me(client, await _token(client, email)) == 200


async def test_idle_sessions_end(runtime: Runtime) -> None:
    clock = FakeClock()
    auth = AuthService(runtime.sessions, limiter=RedisRateLimiter(runtime.redis),
                       clock=clock, idle_timeout=timedelta(minutes=30))
    await auth.create_user(email="idle@seguros.mx", name="Iris", role=Role.AGENT,
                           password=PASSWORD)
    issued = await auth.login("idle@seguros.mx", PASSWORD, client="127.0.0.1")
    clock.advance(minutes=25)
    assert await auth.resolve(issued.token) is not None  # in use: the idle clock restarts
    clock.advance(minutes=25)
    assert await auth.resolve(issued.token) is not None
    clock.advance(minutes=31)
    assert await auth.resolve(issued.token) is None


@pytest.mark.parametrize("weak", ["12345678", "password1", "qwertyuiop", "iloveyou",
                                  "aaaaaaaaaa"])
async def test_weak_and_common_passwords_are_refused(
    weak: str, client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    created = await client.post("/api/v1/users", headers=world.admin.headers, json={
        "email": "ana@seguros.mx", "name": "Ana", "role": "agent", "password": weak})
    assert created.status_code == 422, created.text
    changed = await client.post("/api/v1/auth/password", headers=world.agent_a.headers,
                                json={"current_password": PASSWORD, "new_password": weak})
    assert changed.status_code == 422, changed.text
    with pytest.raises(InvalidUser):
        await runtime.auth.create_user(email="x@seguros.mx", name="X", role=Role.AGENT,
                                       password=weak)


async def test_a_password_that_is_the_users_email_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    created = await client.post("/api/v1/users", headers=world.admin.headers, json={
        "email": "ana@seguros.mx", "name": "Ana", "role": "agent", "password": "ana@seguros.mx"})
    assert created.status_code == 422, created.text
