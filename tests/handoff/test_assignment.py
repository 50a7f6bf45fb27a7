"""Queues with skills, assignment fairness and capacity, backlog sweep, team visibility."""

from __future__ import annotations

from collections import Counter

import httpx

from bot.settings import Settings
from bot.wiring.runtime import Runtime
from tests.conftest import ask
from tests.handoff.conftest import Staff, StaffFactory, custom_runtime


async def team(client: httpx.AsyncClient, admin: Staff, name: str, skills: list[str],
               members: list[Staff]) -> str:
    created = await client.post("/api/v1/teams", json={"name": name, "skills": skills},
                                headers=admin.headers)
    assert created.status_code == 201, created.text
    team_id = str(created.json()["id"])
    put = await client.put(f"/api/v1/teams/{team_id}/members",
                           json={"user_ids": [str(m.id) for m in members]}, headers=admin.headers)
    assert put.status_code == 204
    return team_id


async def online(client: httpx.AsyncClient, who: Staff, capacity: int = 2) -> None:
    r = await client.post("/api/v1/agents/me/presence", json={"online": True, "capacity": capacity},
                          headers=who.headers)
    assert r.status_code == 204


async def escalate_many(
    client: httpx.AsyncClient, n: int, text: str = "quiero un asesor"
) -> list[str]:
    ids = []
    for i in range(n):
        out = await ask(client, text, phone=f"+52155{i:08d}")
        assert out["owner"] == "queued"
        ids.append(str(out["conversation_id"]))
    return ids


async def assignments(client: httpx.AsyncClient, sup: Staff) -> dict[str, str | None]:
    listed = await client.get("/api/v1/conversations", params={"owner": "queued"},
                              headers=sup.headers)
    return {c["id"]: c["assigned_agent_id"] for c in listed.json()}


async def test_least_busy_respects_capacity_and_sweeps_backlog(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    admin, sup = await staff("admin"), await staff("supervisor")
    a, b, c, d, off = [await staff("agent") for _ in range(5)]
    await team(client, admin, "General", ["general"], [a, b, c, d, off])
    for agent in (a, b, c):
        await online(client, agent, capacity=2)
    ids = await escalate_many(client, 7)
    assigned = await assignments(client, sup)
    load = Counter(v for v in assigned.values() if v)
    assert sorted(load.values()) == [2, 2, 2]  # fair, and nobody over capacity
    assert str(off.id) not in load  # offline agents get nothing
    # the first three went to three different agents (least busy first)
    assert len({assigned[i] for i in ids[:3]}) == 3
    backlog = [i for i, v in assigned.items() if v is None]
    assert backlog == [ids[6]]
    # an agent coming online takes the waiting backlog
    await online(client, d, capacity=2)
    assert (await assignments(client, sup))[ids[6]] == str(d.id)
    mine = await client.get("/api/v1/conversations", params={"mine": "true"}, headers=d.headers)
    assert [x["id"] for x in mine.json()] == [ids[6]]
    # resolving frees room: the next escalation goes to an agent with room
    holder = next(x for x in (a, b, c) if str(x.id) == assigned[ids[0]])
    url = f"/api/v1/conversations/{ids[0]}"
    assert (await client.post(f"{url}/claim", headers=holder.headers)).status_code == 200
    assert (await client.post(f"{url}/resolve", headers=holder.headers)).status_code == 200
    later = await ask(client, "necesito hablar con un asesor ya", phone="+525599999999")
    after = await assignments(client, sup)
    assert after[str(later["conversation_id"])] in {str(holder.id), str(d.id)}


async def test_round_robin_rotates(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    async with custom_runtime(settings, database_url, redis_url,
                              assignment="round_robin") as (rt, client, staff):
        admin, sup = await staff("admin"), await staff("supervisor")
        agents = [await staff("agent") for _ in range(3)]
        await team(client, admin, "General", ["general"], agents)
        for agent in agents:
            await online(client, agent, capacity=10)
        ids = await escalate_many(client, 6)
        assigned = await assignments(client, sup)
        order = [assigned[i] for i in ids]
        assert order[:3] == order[3:] and len(set(order)) == 3


async def test_reason_and_words_choose_the_queue_and_agents_see_only_their_teams(
    client: httpx.AsyncClient, staff: StaffFactory
) -> None:
    admin, sup = await staff("admin"), await staff("supervisor")
    claims, billing, general = await staff("agent"), await staff("agent"), await staff("agent")
    await team(client, admin, "Siniestros", ["siniestros"], [claims])
    await team(client, admin, "Cobranza", ["cobranza"], [billing])
    await team(client, admin, "General", ["general"], [general])
    crash = await ask(client, "quiero un asesor, me chocaron el carro 😭", phone="+525510000001")
    pay = await ask(client, "pasame con un asesor, no me reconocen mi pago", phone="+525510000002")
    other = await ask(client, "quiero hablar con un asesor", phone="+525510000003")
    listed = {c["id"]: c["team_name"] for c in (
        await client.get("/api/v1/conversations", headers=sup.headers)).json()}
    assert listed[str(crash["conversation_id"])] == "Siniestros"
    assert listed[str(pay["conversation_id"])] == "Cobranza"
    assert listed[str(other["conversation_id"])] == "General"

    seen = await client.get("/api/v1/conversations", params={"owner": "queued"},
                            headers=billing.headers)
    assert [c["id"] for c in seen.json()] == [str(pay["conversation_id"])]
    hidden = f"/api/v1/conversations/{crash['conversation_id']}"
    assert (await client.get(hidden, headers=billing.headers)).status_code == 404
    refused = await client.post(f"{hidden}/claim", headers=billing.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "not_your_team"
    assert (await client.post(f"{hidden}/claim", headers=claims.headers)).status_code == 200
