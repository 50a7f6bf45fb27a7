"""Every route x every role x own / other team's / unassigned / bot-only conversation
against the one table (tests/security/route_table.py): nothing grants more than the table
says, nothing refuses what it allows, nothing answers 5xx; a route the table does not
know fails."""

from __future__ import annotations

import httpx
import pytest

from tests.security.conftest import PASSWORD, World
from tests.security.route_table import (
    BODIES,
    KINDS,
    TABLE,
    expected_denied,
    fill_path,
    ordered,
)


def openapi_routes(app_openapi: dict[str, object]) -> list[str]:
    paths = app_openapi["paths"]
    assert isinstance(paths, dict)
    return [f"{method.upper()} {path}" for path, ops in paths.items() for method in ops]


async def test_every_route_has_an_entry(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    routes = openapi_routes(spec)
    assert sorted(set(routes) - set(TABLE)) == []  # a new route needs its line in the table
    assert sorted(set(TABLE) - set(routes)) == []


def _headers(world: World, role: str) -> dict[str, str]:
    return {"anonymous": {}, "agent": world.agent_b.headers,
            "supervisor": world.supervisor.headers, "admin": world.admin.headers}[role]


def _ids(world: World, kind: str | None) -> dict[str, str]:
    conv = {"own": world.mine_b, "other": world.other, "unassigned": world.unassigned,
            "bot_only": world.bot_only}
    msg = {"own": world.message_ids["mine_b"], "other": world.message_ids["other"],
           "unassigned": world.message_ids["unassigned"],
           "bot_only": world.message_ids["bot_only"]}
    if kind is None:
        return {}
    return {"conversation_id": conv[kind], "message_id": msg[kind]}


async def _fresh(client: httpx.AsyncClient, world: World, role: str) -> dict[str, str]:
    staff = {"agent": world.agent_b, "supervisor": world.supervisor, "admin": world.admin}[role]
    login = await client.post("/api/v1/auth/login", json={
        "email": staff.principal.email, "password": PASSWORD})
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def check(
    client: httpx.AsyncClient, world: World, route: str, role: str, kind: str | None
) -> str | None:
    """One request; a description of what is wrong with its answer, or None."""
    method, path = route.split(" ", 1)
    rule = TABLE[route]
    if rule == "stream":
        return None  # a long-lived stream: test_ownership reads it
    url = fill_path(path, _ids(world, kind))
    body = BODIES.get(route)
    headers = _headers(world, role)
    if route.endswith(("/logout", "/logout-everywhere")) and role != "anonymous":
        headers = await _fresh(client, world, role)  # they end the session they use
    response = await client.request(method, url, headers=headers,
                                     json=body if method in ("POST", "PUT", "PATCH") else None)
    status = response.status_code
    denied = expected_denied(rule, role, kind)
    if status >= 500:
        return f"{route} {role} {kind}: {status}"
    if denied and 200 <= status < 400:  # a 422 grants nothing: the body was refused
        return f"{route} {role} {kind}: granted {status}, the table says no"
    if denied or rule == "public":
        return None
    text = response.text.lower()
    hidden = status == 404 and "not found" in text and ("conversation" in text or "message" in text)
    if status in (401, 403) or (kind is not None and hidden):
        return f"{route} {role} {kind}: refused {status} {response.text[:120]}"
    return None


@pytest.mark.parametrize("role", ["anonymous", "agent", "supervisor", "admin"])
async def test_route_table(role: str, client: httpx.AsyncClient, world: World) -> None:
    client.cookies.set("atiende_sim", "the-table-test-own-session")
    problems = []
    for route in ordered(list(TABLE)):
        path = route.split(" ", 1)[1]
        kinds = KINDS if "{conversation_id}" in path or TABLE[route] == "sim_msg" else (None,)
        for kind in kinds:
            problem = await check(client, world, route, role, kind)
            if problem:
                problems.append(problem)
    assert problems == [], "\n".join(problems)
