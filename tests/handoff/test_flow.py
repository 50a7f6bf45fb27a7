"""Handoff end to end through the API and the real pipeline: escalate, claim, reply, resolve."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from bot.messages import InboundMessage, MessageKind
from bot.wiring.runtime import Runtime
from handoff.conversations import Message
from handoff.tables import Ticket
from tests.conftest import ask
from tests.handoff.conftest import StaffFactory

PHONE = "+5215511112222"


async def escalate(client: httpx.AsyncClient, phone: str = PHONE, name: str = "Lupita") -> str:
    out = await ask(client, "oye quiero hablar con un asesor porfa", phone=phone, name=name)
    assert out["owner"] == "queued" and out["escalated"] is True
    return str(out["conversation_id"])


async def outbound(runtime: Runtime, conversation_id: str) -> list[tuple[str, str]]:
    async with runtime.sessions() as session:
        rows = (
            await session.execute(
                select(Message.author, Message.text)
                .where(Message.conversation_id == uuid.UUID(conversation_id),
                       Message.direction == "out")
                .order_by(Message.seq)
            )
        ).all()
    return [(r.author, r.text or "") for r in rows]


async def test_escalation_notice_replaces_bot_line_and_says_the_wait(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    nobody = await ask(client, "quiero hablar con un asesor", phone="+5215500000001")
    assert nobody["owner"] == "queued"
    assert len(nobody["replies"]) == 1  # one notice, not on top of the bot's own line
    assert "no hay asesores conectados" in str(nobody["replies"][0])  # type: ignore[index]

    agent = await staff("agent")
    assert (await client.post("/api/v1/agents/me/presence", json={"online": True},
                              headers=agent.headers)).status_code == 204
    out = await ask(client, "I want to talk to a human agent please", phone="+5215500000002")
    assert out["owner"] == "queued" and len(out["replies"]) == 1  # type: ignore[arg-type]
    assert "Estimated wait" in str(out["replies"][0])  # type: ignore[index]


async def test_claim_reply_resolve_and_bot_silence(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    conversation_id = await escalate(client)
    agent = await staff("agent", name="Ana")
    queue = await client.get("/api/v1/conversations", params={"owner": "queued"},
                             headers=agent.headers)
    assert queue.status_code == 200
    assert [c["id"] for c in queue.json()] == [conversation_id]

    claimed = await client.post(f"/api/v1/conversations/{conversation_id}/claim",
                                headers=agent.headers)
    assert claimed.status_code == 200 and claimed.json()["owner"] == "human"

    silent = await ask(client, "hola?? sigue alguien ahi", phone=PHONE)
    assert silent["owner"] == "human" and silent["replies"] == []

    sent = await client.post(f"/api/v1/conversations/{conversation_id}/messages",
                             json={"text": "Hola Lupita, soy Ana. ¿En qué te ayudo?"},
                             headers=agent.headers)
    assert sent.status_code == 200
    async with runtime.sessions() as session:
        row = await session.get(Message, uuid.UUID(sent.json()["message_id"]))
        assert row is not None and row.author == "agent" and row.author_id == agent.id
        assert row.status == "sent"  # through the outbox and the channel
        ticket = (await session.execute(select(Ticket))).scalar_one()
        assert ticket.first_response_at is not None and ticket.claimed_at is not None

    resolved = await client.post(f"/api/v1/conversations/{conversation_id}/resolve",
                                 headers=agent.headers)
    assert resolved.status_code == 200 and resolved.json()["owner"] == "bot"
    texts = [t for _, t in await outbound(runtime, conversation_id)]
    assert any("del 1" in t for t in texts)  # the CSAT question went out

    again = await client.post(f"/api/v1/conversations/{conversation_id}/messages",
                              json={"text": "otra cosa"}, headers=agent.headers)
    assert again.status_code == 200  # writing to a bot conversation takes it over
    assert again.json()["owner"] == "human"


async def test_two_agents_claim_at_the_same_instant(
    client: httpx.AsyncClient, staff: StaffFactory
) -> None:
    conversation_id = await escalate(client)
    agents = [await staff("agent", name=n) for n in ("Ana", "Beto", "Carla", "Dani")]
    results = await asyncio.gather(*[
        client.post(f"/api/v1/conversations/{conversation_id}/claim", headers=x.headers)
        for x in agents
    ])
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409, 409, 409]
    winner = next(a for a, r in zip(agents, results, strict=True) if r.status_code == 200)
    for loser in (r for r in results if r.status_code == 409):
        assert loser.json()["code"] == "already_claimed"
        assert loser.json()["detail"] == f"already claimed by {winner.principal.name}"
    # the winner claiming again is harmless (double click)
    assert (await client.post(f"/api/v1/conversations/{conversation_id}/claim",
                              headers=winner.headers)).status_code == 200


async def test_refusals_with_reasons(client: httpx.AsyncClient, staff: StaffFactory) -> None:
    conversation_id = await escalate(client)
    a, b = await staff("agent"), await staff("agent")
    assert (await client.post(f"/api/v1/conversations/{conversation_id}/claim",
                              headers=a.headers)).status_code == 200
    other = await client.post(f"/api/v1/conversations/{conversation_id}/messages",
                              json={"text": "yo lo atiendo"}, headers=b.headers)
    assert other.status_code == 409 and other.json()["code"] == "not_yours"
    resolve_other = await client.post(f"/api/v1/conversations/{conversation_id}/resolve",
                                      headers=b.headers)
    assert resolve_other.status_code == 403
    empty = await client.post(f"/api/v1/conversations/{conversation_id}/messages",
                              json={"text": "   "}, headers=a.headers)
    assert empty.status_code == 422
    assert (await client.post(f"/api/v1/conversations/{conversation_id}/resolve",
                              headers=a.headers)).status_code == 200
    twice = await client.post(f"/api/v1/conversations/{conversation_id}/resolve",
                              headers=a.headers)
    assert twice.status_code == 409 and "cannot resolve" in twice.json()["detail"]
    bot_claim = await client.post(f"/api/v1/conversations/{conversation_id}/claim",
                                  headers=a.headers)
    assert bot_claim.status_code == 409
    missing = await client.post(f"/api/v1/conversations/{uuid.uuid4()}/claim",
                                headers=a.headers)
    assert missing.status_code == 404


async def test_reply_to_closed_conversation_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    conversation_id = await escalate(client)
    agent = await staff("agent")
    async with runtime.sessions() as session, session.begin():
        from handoff.conversations import Conversation

        conv = await session.get(Conversation, uuid.UUID(conversation_id))
        assert conv is not None
        conv.owner = "closed"
    refused = await client.post(f"/api/v1/conversations/{conversation_id}/messages",
                                json={"text": "hola"}, headers=agent.headers)
    assert refused.status_code == 409 and refused.json()["code"] == "closed"


async def test_phone_typed_reply_takes_over(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    first = await ask(client, "hola buenas tardes", phone=PHONE)
    assert first["owner"] == "bot" and first["replies"]
    typed = await runtime.ingestor.accept(
        InboundMessage(
            channel="simulator", account="demo", provider_message_id="owner-1",
            sender_phone="+525511112222", kind=MessageKind.TEXT, received_at=datetime.now(UTC),
            text="Hola, soy Don Pepe, yo te atiendo", from_owner=True,
        )
    )
    async with runtime.sessions() as session:
        ticket = (await session.execute(select(Ticket))).scalar_one()
    assert ticket.reason == "owner_phone" and ticket.first_response_at is not None
    after = await ask(client, "ah ok gracias don pepe", phone=PHONE)
    assert after["owner"] == "human" and after["replies"] == []
    assert str(after["conversation_id"]) == str(typed.conversation_id)


async def test_agent_starts_a_conversation_and_the_bot_stays_out(
    client: httpx.AsyncClient, staff: StaffFactory, runtime: Runtime
) -> None:
    agent = await staff("agent")
    started = await client.post(
        "/api/v1/conversations",
        json={"phone": "55 3333 4444", "text": "Hola, le escribo de Seguros Atiende por su póliza"},
        headers=agent.headers,
    )
    assert started.status_code == 201, started.text
    assert started.json()["owner"] == "human"
    assert started.json()["assigned_agent_id"] == str(agent.id)
    reply = await ask(client, "hola que paso con mi poliza", phone="+525533334444")
    assert reply["owner"] == "human" and reply["replies"] == []
    bad = await client.post("/api/v1/conversations", json={"phone": "abc", "text": "x"},
                            headers=agent.headers)
    assert bad.status_code == 422


async def test_release_transfer_notes_labels_canned(
    client: httpx.AsyncClient, staff: StaffFactory, runtime: Runtime
) -> None:
    conversation_id = await escalate(client)
    a, b = await staff("agent", name="Ana"), await staff("agent", name="Beto")
    sup, admin = await staff("supervisor"), await staff("admin")
    url = f"/api/v1/conversations/{conversation_id}"
    assert (await client.post(f"{url}/claim", headers=a.headers)).status_code == 200
    moved = await client.post(f"{url}/transfer", json={"agent_id": str(b.id)}, headers=a.headers)
    assert moved.status_code == 200 and moved.json()["assigned_agent_id"] == str(b.id)
    assert moved.json()["owner"] == "human"
    assert (await client.post(f"{url}/release", headers=a.headers)).status_code == 403
    released = await client.post(f"{url}/release", headers=b.headers)
    assert released.status_code == 200 and released.json()["owner"] == "queued"
    reassigned = await client.post(f"{url}/assign", json={"agent_id": str(a.id)},
                                   headers=sup.headers)
    assert reassigned.status_code == 200 and reassigned.json()["assigned_agent_id"] == str(a.id)

    team = await client.post("/api/v1/teams", json={"name": "Siniestros",
                                                    "skills": ["siniestros"]},
                             headers=admin.headers)
    assert team.status_code == 201
    to_team = await client.post(f"{url}/transfer", json={"team_id": team.json()["id"]},
                                headers=sup.headers)
    assert to_team.status_code == 200 and to_team.json()["owner"] == "queued"
    both = await client.post(f"{url}/transfer", json={}, headers=sup.headers)
    assert both.status_code == 422

    note = await client.post(f"{url}/notes", json={"text": "Cliente molesto, ofrecer descuento"},
                             headers=sup.headers)
    assert note.status_code == 201
    labels = await client.put(f"{url}/labels", json={"labels": ["VIP", "urgente", "vip"]},
                              headers=sup.headers)
    assert labels.json() == {"labels": ["urgente", "vip"]}
    detail = (await client.get(url, headers=sup.headers)).json()
    assert [n["text"] for n in detail["notes"]] == ["Cliente molesto, ofrecer descuento"]
    assert detail["conversation"]["labels"] == ["urgente", "vip"]
    assert detail["conversation"]["team_name"] == "Siniestros"
    assert "asesor" in detail["summary"] and detail["summary_source"] == "extractive"
    assert detail["ticket"]["first_response"]["target_seconds"] == 15 * 60
    # notes never reach the customer
    assert all("descuento" not in t for _, t in await outbound(runtime, conversation_id))

    canned = await client.post("/api/v1/canned-responses",
                               json={"shortcut": "saludo", "text": "¡Hola! Soy tu asesor."},
                               headers=sup.headers)
    assert canned.status_code == 201
    dup = await client.post("/api/v1/canned-responses",
                            json={"shortcut": "saludo", "text": "x"}, headers=sup.headers)
    assert dup.status_code == 422
    listed = await client.get("/api/v1/canned-responses", headers=a.headers)
    assert [c["shortcut"] for c in listed.json()] == ["saludo"]
