"""Security fixtures: two teams with an agent each, a supervisor, an admin, and the four
kinds of conversation an authorization rule must tell apart (own, other team's,
unassigned, bot-only); the app on a real port when a test needs a browser or a stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from bot.api import create_app
from bot.wiring.runtime import Runtime
from tests.browsers import free_port
from tests.conftest import ask
from tests.handoff.conftest import PASSWORD, Staff, StaffFactory, staff_factory
from tests.security.route_table import ERASABLE

__all__ = ["PASSWORD", "World", "serve"]

_FIGURES: list[str] = []


@pytest.fixture
def figures() -> list[str]:
    """Append ``"name: figure"`` lines; they are printed in the terminal summary."""
    return _FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("security figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)


@dataclass
class World:
    admin: Staff
    supervisor: Staff
    agent_a: Staff          # team A; holds ``own``
    agent_b: Staff          # team B
    team_a: str
    team_b: str
    own: str                # claimed by agent_a (team A)
    mine_b: str             # team B's, claimed by agent_b
    other: str              # queued for team A: agent_b's "other team"
    unassigned: str         # queued for no team
    bot_only: str           # only the bot ever handled it
    phones: dict[str, str]
    message_ids: dict[str, str]


@pytest.fixture
def staff(runtime: Runtime, client: httpx.AsyncClient) -> StaffFactory:
    return staff_factory(runtime, client)


async def _conversation(client: httpx.AsyncClient, phone: str, text: str) -> tuple[str, str]:
    out = await ask(client, text, phone=phone)
    return str(out["conversation_id"]), str(out["message_id"])


@pytest.fixture
async def world(client: httpx.AsyncClient, staff: StaffFactory) -> World:
    admin, supervisor = await staff("admin"), await staff("supervisor")
    agent_a, agent_b = await staff("agent", "Ana"), await staff("agent", "Beto")
    teams = []
    for name, member in (("Siniestros", agent_a), ("Ventas", agent_b)):
        team = await client.post("/api/v1/teams", json={"name": name, "skills": [name.lower()]},
                                 headers=admin.headers)
        assert team.status_code == 201, team.text
        await client.put(f"/api/v1/teams/{team.json()['id']}/members",
                         json={"user_ids": [str(member.id)]}, headers=admin.headers)
        teams.append(team.json()["id"])
    phones = {"own": "+525511110001", "other": "+525511110002", "unassigned": "+525511110003",
              "bot_only": "+525511110004", "mine_b": "+525511110005"}
    ids, messages = {}, {}
    for kind in ("own", "other", "unassigned", "mine_b"):
        ids[kind], messages[kind] = await _conversation(client, phones[kind], "quiero un asesor")
    await _conversation(client, ERASABLE, "hola")  # the data-rights routes' customer
    ids["bot_only"], messages["bot_only"] = await _conversation(
        client, phones["bot_only"], "hola, buenas tardes")
    for kind in ("own", "other"):
        moved = await client.post(f"/api/v1/conversations/{ids[kind]}/transfer",
                                  json={"team_id": teams[0]}, headers=admin.headers)
        assert moved.status_code == 200, moved.text
    moved = await client.post(f"/api/v1/conversations/{ids['mine_b']}/transfer",
                              json={"team_id": teams[1]}, headers=admin.headers)
    assert moved.status_code == 200, moved.text
    for kind, agent in (("own", agent_a), ("mine_b", agent_b)):
        claimed = await client.post(f"/api/v1/conversations/{ids[kind]}/claim",
                                    headers=agent.headers)
        assert claimed.status_code == 200, claimed.text
    detail = await client.get(f"/api/v1/conversations/{ids['bot_only']}", headers=admin.headers)
    assert detail.json()["conversation"]["owner"] == "bot"
    return World(admin, supervisor, agent_a, agent_b, teams[0], teams[1], ids["own"],
                 ids["mine_b"], ids["other"], ids["unassigned"], ids["bot_only"], phones,
                 messages)


@asynccontextmanager
async def serve(runtime: Runtime) -> AsyncIterator[str]:
    """The app on a free port of 127.0.0.1 serving ``runtime`` (whose worker runs apart)."""
    async def factory() -> Runtime:
        return runtime

    app = create_app(factory, run_worker=False)
    app.state.runtime = runtime
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_level="warning", access_log=False,
        timeout_graceful_shutdown=2, lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
