"""The RBAC matrix: every inbox endpoint × anonymous, agent, supervisor, admin."""

from __future__ import annotations

import uuid

import httpx
import pytest

from bot.wiring.runtime import Runtime
from tests.conftest import ask
from tests.handoff.conftest import StaffFactory

ANY_STAFF = {"agent", "supervisor", "admin"}
SUPERVISORS = {"supervisor", "admin"}
ADMINS = {"admin"}

# (method, path, json body, roles allowed)
ENDPOINTS: list[tuple[str, str, object, set[str]]] = [
    ("GET", "/api/v1/conversations?owner=queued", None, ANY_STAFF),
    ("POST", "/api/v1/conversations", {"phone": "+525512121212", "text": "Hola"}, ANY_STAFF),
    ("GET", "/api/v1/conversations/{cid}", None, ANY_STAFF),
    ("POST", "/api/v1/conversations/{cid}/claim", None, ANY_STAFF),
    ("POST", "/api/v1/conversations/{cid}/messages", {"text": "Hola"}, ANY_STAFF),
    ("POST", "/api/v1/conversations/{cid}/notes", {"text": "nota"}, ANY_STAFF),
    ("PUT", "/api/v1/conversations/{cid}/labels", {"labels": ["vip"]}, ANY_STAFF),
    ("POST", "/api/v1/conversations/{cid}/release", None, ANY_STAFF),
    ("POST", "/api/v1/conversations/{cid}/claim", None, ANY_STAFF),
    ("POST", "/api/v1/conversations/{cid}/transfer", {"team_id": "{tid}"}, ANY_STAFF),
    ("POST", "/api/v1/conversations/{cid}/assign", {"agent_id": "{aid}"}, SUPERVISORS),
    ("POST", "/api/v1/conversations/{cid}/resolve", None, ANY_STAFF),
    ("POST", "/api/v1/agents/me/presence", {"online": False}, ANY_STAFF),
    ("GET", "/api/v1/agents", None, ANY_STAFF),
    ("GET", "/api/v1/teams", None, ANY_STAFF),
    ("POST", "/api/v1/teams", {"name": "Equipo {n}", "skills": ["ventas"]}, ADMINS),
    ("PUT", "/api/v1/teams/{tid}/members", {"user_ids": ["{aid}"]}, ADMINS),
    ("GET", "/api/v1/canned-responses", None, ANY_STAFF),
    ("POST", "/api/v1/canned-responses", {"shortcut": "s{n}", "text": "Hola"}, SUPERVISORS),
    ("DELETE", "/api/v1/canned-responses/{canned}", None, SUPERVISORS),
    ("GET", "/api/v1/users", None, ADMINS),
    ("POST", "/api/v1/users", {"email": "u{n}@seguros.mx", "name": "U", "role": "agent",
                               "password": "clave-larga-1"}, ADMINS),
    ("PATCH", "/api/v1/users/{other}", {"role": "supervisor"}, ADMINS),
    ("GET", "/api/v1/handoff/settings", None, ADMINS),
]


def fill(value: object, ids: dict[str, str]) -> object:
    if isinstance(value, str):
        for key, val in ids.items():
            value = value.replace("{" + key + "}", val)
        return value
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("role", ["anonymous", "agent", "supervisor", "admin"])
async def test_rbac_matrix(
    role: str, client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    admin = await staff("admin")
    actor = None if role == "anonymous" else await staff(role)
    headers = actor.headers if actor else {}
    team = await client.post("/api/v1/teams", json={"name": "General", "skills": ["general"]},
                             headers=admin.headers)
    members = [str(actor.id)] if actor else []
    await client.put(f"/api/v1/teams/{team.json()['id']}/members", json={"user_ids": members},
                     headers=admin.headers)
    canned = await client.post("/api/v1/canned-responses",
                               json={"shortcut": "hola", "text": "Hola"}, headers=admin.headers)
    conversation = await ask(client, "quiero un asesor", phone="+525587654321")
    ids = {"cid": str(conversation["conversation_id"]), "tid": team.json()["id"],
           "aid": str(actor.id if actor else admin.id), "canned": canned.json()["id"],
           "other": str((await staff("agent")).id)}
    for n, (method, path, body, allowed) in enumerate(ENDPOINTS):
        ids["n"] = f"{n}{uuid.uuid4().hex[:4]}"
        response = await client.request(
            method, str(fill(path, ids)), json=fill(body, ids) if body is not None else None,
            headers=headers,
        )
        where = f"{role} {method} {path}: {response.status_code} {response.text[:200]}"
        if actor is None:
            assert response.status_code == 401, where
        elif role in allowed:
            assert response.status_code not in (401, 403) and response.status_code < 500, where
        else:
            assert response.status_code == 403, where


async def test_stream_and_pages_need_a_login(
    client: httpx.AsyncClient, staff: StaffFactory
) -> None:
    assert (await client.get("/api/v1/inbox/stream")).status_code == 401
    page = await client.get("/inbox")
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=/inbox")
    agent = await staff("agent")
    assert (await client.get("/inbox", headers=agent.headers)).status_code == 200
    assert (await client.get(f"/inbox/conversations/{uuid.uuid4()}",
                             headers=agent.headers)).status_code == 200


async def test_customer_text_is_escaped_in_pages(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    from handoff.roles import Role

    payload = "<img src=x onerror=alert(1)>"
    await runtime.auth.create_user(email="xss@seguros.mx", name=payload, role=Role.AGENT,
                                   password="clave-larga-1")
    login = await client.post("/api/v1/auth/login",
                              json={"email": "xss@seguros.mx", "password": "clave-larga-1"})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    page = await client.get("/inbox", headers=headers)
    assert payload not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert ".innerHTML" not in page.text  # customer data only ever goes through textContent


async def test_deactivated_user_is_locked_out_at_once(
    client: httpx.AsyncClient, staff: StaffFactory
) -> None:
    admin, agent = await staff("admin"), await staff("agent")
    assert (await client.get("/api/v1/auth/me", headers=agent.headers)).status_code == 200
    off = await client.patch(f"/api/v1/users/{agent.id}", json={"active": False},
                             headers=admin.headers)
    assert off.status_code == 200 and off.json()["active"] is False
    assert (await client.get("/api/v1/conversations", headers=agent.headers)).status_code == 401
    missing = await client.patch(f"/api/v1/users/{uuid.uuid4()}", json={"active": False},
                                 headers=admin.headers)
    assert missing.status_code == 422
