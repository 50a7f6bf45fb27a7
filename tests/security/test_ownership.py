"""Authorization by ownership (issue findings): starting by number, the live stream, the
message-outcome lookup, closed handoffs, staff e-mails. Each failed on the old code."""

from __future__ import annotations

import asyncio
import json

import httpx

from bot.wiring.runtime import Runtime
from tests.security.conftest import World, serve


async def test_an_agent_cannot_take_another_teams_conversation_by_its_number(
    client: httpx.AsyncClient, world: World
) -> None:
    for kind in ("other", "bot_only"):
        taken = await client.post(
            "/api/v1/conversations", json={"phone": world.phones[kind], "text": "soy yo"},
            headers=world.agent_b.headers)
        assert taken.status_code == 403, (kind, taken.text)
        conv = getattr(world, kind)
        assert (await client.get(f"/api/v1/conversations/{conv}",
                                 headers=world.agent_b.headers)).status_code == 404
        detail = await client.get(f"/api/v1/conversations/{conv}", headers=world.admin.headers)
        assert detail.json()["conversation"]["assigned_agent_id"] is None
        assert "soy yo" not in json.dumps(detail.json())
    # the unassigned queue is everybody's; a new number is the agent's own
    ok = await client.post("/api/v1/conversations",
                           json={"phone": world.phones["unassigned"], "text": "le ayudo"},
                           headers=world.agent_b.headers)
    assert ok.status_code == 201, ok.text
    new = await client.post("/api/v1/conversations",
                            json={"phone": "+525599990000", "text": "hola"},
                            headers=world.agent_b.headers)
    assert new.status_code == 201, new.text
    # supervisors may write to anyone
    sup = await client.post("/api/v1/conversations",
                            json={"phone": world.phones["bot_only"], "text": "supervisión"},
                            headers=world.supervisor.headers)
    assert sup.status_code == 201, sup.text


async def test_message_outcome_lookup_follows_visibility(
    client: httpx.AsyncClient, world: World
) -> None:
    client.cookies.set("atiende_sim", "the-agents-own-browser-session")  # not the sender's
    for kind in ("other", "bot_only"):
        looked = await client.get(f"/api/v1/simulator/messages/{world.message_ids[kind]}",
                                  headers=world.agent_b.headers)
        assert looked.status_code == 404, (kind, looked.text)
    mine = await client.get(f"/api/v1/simulator/messages/{world.message_ids['own']}",
                            headers=world.agent_a.headers)
    assert mine.status_code == 200
    sup = await client.get(f"/api/v1/simulator/messages/{world.message_ids['bot_only']}",
                           headers=world.supervisor.headers)
    assert sup.status_code == 200


async def test_a_closed_handoff_does_not_keep_a_conversation_visible(
    client: httpx.AsyncClient, world: World
) -> None:
    url = f"/api/v1/conversations/{world.other}"
    assert (await client.get(url, headers=world.agent_a.headers)).status_code == 200
    resolved = await client.post(f"{url}/resolve", headers=world.supervisor.headers)
    assert resolved.status_code == 200, resolved.text
    assert (await client.get(url, headers=world.agent_a.headers)).status_code == 404
    listed = await client.get("/api/v1/conversations", params={"status": "all"},
                              headers=world.agent_a.headers)
    assert world.other not in {c["id"] for c in listed.json()}
    # what an agent resolved itself stays in its history
    own = f"/api/v1/conversations/{world.own}"
    assert (await client.post(f"{own}/resolve", headers=world.agent_a.headers)).status_code == 200
    assert (await client.get(own, headers=world.agent_a.headers)).status_code == 200


async def test_agents_see_names_not_emails(client: httpx.AsyncClient, world: World) -> None:
    agents = (await client.get("/api/v1/agents", headers=world.agent_b.headers)).json()
    assert agents and all(a["email"] is None for a in agents)
    assert {"Ana", "Beto"} <= {a["name"] for a in agents}
    sup = (await client.get("/api/v1/agents", headers=world.supervisor.headers)).json()
    assert all("@" in a["email"] for a in sup)


async def test_the_stream_sends_an_agent_only_what_it_may_see(
    runtime: Runtime, client: httpx.AsyncClient, world: World
) -> None:
    async with serve(runtime) as base, httpx.AsyncClient(base_url=base, timeout=20) as http:
        seen: list[str] = []

        async def read() -> None:
            async with http.stream("GET", "/api/v1/inbox/stream",
                                   headers=world.agent_b.headers) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        seen.append(json.loads(line[5:])["conversation_id"])
                        if seen[-1] == world.unassigned:
                            return

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.5)
        for conv in (world.other, world.bot_only):  # team A's and the bot's: not for B
            await client.put(f"/api/v1/conversations/{conv}/labels", json={"labels": ["x"]},
                             headers=world.admin.headers)
        await client.put(f"/api/v1/conversations/{world.unassigned}/labels",
                         json={"labels": ["y"]}, headers=world.admin.headers)
        await asyncio.wait_for(reader, 15)
    assert world.unassigned in seen
    assert world.other not in seen and world.bot_only not in seen
