"""ATIENDE_TRUSTED_PROXIES: X-Forwarded-For is believed only from a trusted peer; login
throttling and the audit log use the client's address, not the proxy's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request

from bot.api.clientip import client_ip
from bot.settings import Settings, parse_networks
from bot.wiring.runtime import Runtime
from handoff.roles import Role
from tests.conftest import app_client


def request(peer: str, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", f.encode()) for f in forwarded]
    return Request({"type": "http", "client": (peer, 5000), "headers": headers})


def test_forwarded_for_only_from_trusted_peers() -> None:
    trusted = parse_networks("10.0.0.0/8, 127.0.0.1")
    assert client_ip(request("203.0.113.9", "1.2.3.4"), trusted) == "203.0.113.9"
    assert client_ip(request("10.0.0.2", "198.51.100.7"), trusted) == "198.51.100.7"
    # the client wrote its own header first: only the proxy-appended entry counts
    assert client_ip(request("10.0.0.2", "6.6.6.6, 198.51.100.7"), trusted) == "198.51.100.7"
    # two trusted proxies in a row
    assert client_ip(request("127.0.0.1", "198.51.100.7, 10.9.9.9"), trusted) == "198.51.100.7"
    assert client_ip(request("10.0.0.2", "not-an-ip"), trusted) == "10.0.0.2"
    assert client_ip(request("10.0.0.2"), trusted) == "10.0.0.2"
    assert client_ip(request("10.0.0.2", "198.51.100.7"), ()) == "10.0.0.2"
    with pytest.raises(ValueError, match="ATIENDE_TRUSTED_PROXIES"):
        Settings(trusted_proxies="10.0.0.0/8, nonsense")


@pytest.fixture
async def proxied(
    tmp_path: Path, database_url: str, redis_url: str
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    # the in-process test client connects from 127.0.0.1, like a reverse proxy on the host
    settings = Settings(env="test", data_dir=tmp_path, log_level="WARNING",
                        trusted_proxies="127.0.0.1")
    runtime = await Runtime.create(settings, database_url=database_url, redis_url=redis_url)
    async with app_client(runtime) as client:
        yield runtime, client
    await runtime.close()


async def test_throttling_and_audit_use_the_forwarded_client(
    proxied: tuple[Runtime, httpx.AsyncClient],
) -> None:
    runtime, client = proxied
    await runtime.auth.create_user(email="ana@seguros.mx", name="Ana", role=Role.ADMIN,
                                   password="contraseña-segura")
    wrong = {"email": "ana@seguros.mx", "password": "nope-nope"}
    attacker = {"X-Forwarded-For": "203.0.113.66"}
    for _ in range(5):
        assert (await client.post("/api/v1/auth/login", json=wrong,
                                  headers=attacker)).status_code == 401
    assert (await client.post("/api/v1/auth/login", json=wrong,
                              headers=attacker)).status_code == 429
    # the same proxy, another customer of it: not locked out
    ana = await client.post("/api/v1/auth/login", headers={"X-Forwarded-For": "198.51.100.20"},
                            json={"email": "ana@seguros.mx", "password": "contraseña-segura"})
    assert ana.status_code == 200
    token = {"Authorization": f"Bearer {ana.json()['access_token']}",
             "X-Forwarded-For": "198.51.100.20"}
    records = (await client.get("/api/v1/admin/audit?action=auth.*&limit=50",
                                headers=token)).json()
    clients = {(r["action"], r["client"]) for r in records}
    assert ("auth.login_failed", "203.0.113.66") in clients
    assert ("auth.login_throttled", "203.0.113.66") in clients
    assert ("auth.login", "198.51.100.20") in clients
