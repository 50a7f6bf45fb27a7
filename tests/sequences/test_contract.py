"""The outside contract (CONTRACTS.md, "Follow-up sequences") on the default runtime:
real clock, periodic tick in the worker, simulator number."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from bot.channels.simulator import SIMULATOR
from bot.wiring.runtime import Runtime
from handoff.conversations import Contact, Conversation, Message, contact_key


async def _sequence_texts(rt: Runtime, phone: str) -> list[tuple[str | None, str]]:
    async with rt.sessions() as s:
        rows = (await s.execute(
            select(Message.text, Message.status)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(Contact.phone_e164.in_([phone, contact_key(SIMULATOR, phone)]),
                   Message.author == "sequence")
            .order_by(Message.seq)
        )).all()
    return [(r.text, r.status) for r in rows]


async def test_create_enroll_and_list_as_the_contract_says(
    runtime: Runtime, client: httpx.AsyncClient, auth_headers  # type: ignore[no-untyped-def]
) -> None:
    admin = await auth_headers("admin")
    created = await client.post("/api/v1/sequences", headers=admin, json={
        "name": "Cotización", "stop_on_reply": True,
        "steps": [{"delay_minutes": 0, "text": "Hola {nombre}, ¿pudiste ver la cotización?"},
                  {"delay_minutes": 1440, "text": "¿Te ayudo con algo más de la cotización?"}],
    })
    assert created.status_code == 201, created.text
    sequence_id = created.json()["id"]

    enrolled = await client.post(f"/api/v1/sequences/{sequence_id}/enrollments",
                                 headers=admin, json={"phone": "55 1111 2222", "name": "Lupita"})
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["phone"] == "+525511112222"

    for _ in range(100):  # the first step has no delay: it goes out without waiting a tick
        texts = await _sequence_texts(runtime, "+525511112222")
        if texts and texts[0][1] == "sent":
            break
        await asyncio.sleep(0.1)
    assert texts == [("Hola Lupita, ¿pudiste ver la cotización?", "sent")]

    listed = await client.get(f"/api/v1/sequences/{sequence_id}/enrollments", headers=admin)
    assert listed.status_code == 200
    [row] = listed.json()
    assert {k: row[k] for k in ("phone", "state", "steps_sent", "stop_reason")} == {
        "phone": "+525511112222", "state": "active", "steps_sent": 1, "stop_reason": None}

    # roles: agents may not define sequences; nobody anonymous sees anything
    agent = await auth_headers("agent")
    refused = await client.post("/api/v1/sequences", headers=agent,
                                json={"name": "x", "steps": [{"delay_minutes": 5, "text": "x"}]})
    assert refused.status_code == 403
    anonymous = await client.get(f"/api/v1/sequences/{sequence_id}/enrollments")
    assert anonymous.status_code == 401
    metrics = (await client.get("/metrics")).text
    assert 'atiende_sequence_steps_total{action="send"} 1.0' in metrics
    docs = (await client.get("/openapi.json")).json()["paths"]
    assert "/api/v1/sequences" in docs and "/api/v1/sequences/{sequence_id}/enrollments" in docs
