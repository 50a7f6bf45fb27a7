"""While a conversation waits in the queue and no agent has claimed it, the bot still
answers what the knowledge base answers (saying a person is still coming); it is silent
about the rest, and silent about everything from the moment an agent claims."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from bot.answering.responder import Decision, ResponseRequest
from bot.i18n import t
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.conversations import Message
from knowledge.demo import load_demo_if_empty
from knowledge.embeddings import Embedder
from tests.conftest import ask
from tests.handoff.conftest import StaffFactory, client_for, staff_factory

PHONE = "+5215512349876"
STILL = t("still_queued", "es")


@pytest.fixture
async def kb_runtime(
    settings: Settings, database_url: str, redis_url: str, kb_embedder: Embedder
) -> AsyncIterator[Runtime]:
    rt = await Runtime.create(settings, database_url=database_url, redis_url=redis_url,
                              embedder=kb_embedder)
    await load_demo_if_empty(rt.knowledge)
    rt.start_worker()
    yield rt
    await rt.close()


@pytest.fixture
async def kclient(kb_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_for(kb_runtime):
        yield c


async def test_queued_conversation_gets_knowledge_answers_until_an_agent_claims(
    kclient: httpx.AsyncClient, kb_runtime: Runtime
) -> None:
    staff = staff_factory(kb_runtime, kclient)
    handed = await ask(kclient, "quiero hablar con un asesor por favor", phone=PHONE)
    assert handed["owner"] == "queued"

    answered = await ask(kclient, "oigan, ¿puedo pagar en el oxxo?", phone=PHONE)
    assert answered["owner"] == "queued" and not answered["escalated"]
    assert answered["sources"] and answered["sources"][0] == "formas-pago"  # type: ignore[index]
    replies = answered["replies"]
    assert isinstance(replies, list) and len(replies) == 2
    assert "OXXO" in replies[0] and replies[1] == STILL

    # nothing in the knowledge base: the person who is coming answers it
    unknown = await ask(kclient, "¿a cómo está el dólar hoy?", phone=PHONE)
    assert unknown["owner"] == "queued" and unknown["replies"] == []

    agent = await staff("agent")
    conversation_id = answered["conversation_id"]
    claimed = await kclient.post(f"/api/v1/conversations/{conversation_id}/claim",
                                 headers=agent.headers)
    assert claimed.status_code == 200, claimed.text
    after = await ask(kclient, "¿y puedo pagar con tarjeta?", phone=PHONE)
    assert after["owner"] == "human" and after["replies"] == []

    # the agent sees every turn, the bot's queued answer included
    detail = await kclient.get(f"/api/v1/conversations/{conversation_id}",
                               headers=agent.headers)
    texts = [m["text"] for m in detail.json()["messages"]]
    assert STILL in texts and "¿a cómo está el dólar hoy?" in texts


class GatedKnowledge:
    """Answers from the knowledge base, but only when the test opens the gate."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def respond(self, request: ResponseRequest) -> Decision:
        if "asesor" in request.text:
            return Decision("human_request", 0.9, (t("handoff"),), escalate=True,
                            reason="customer_request")
        self.entered.set()
        await self.gate.wait()
        return Decision("question", 0.9, ("Respuesta que NO debe salir",),
                        sources=("formas-pago",))


async def test_a_claim_while_the_bot_answers_a_queued_conversation_silences_it(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    gated = GatedKnowledge()
    rt = await Runtime.create(settings, database_url=database_url, redis_url=redis_url,
                              responder=gated)
    rt.start_worker()
    try:
        async for client in client_for(rt):
            staff: StaffFactory = staff_factory(rt, client)
            handed = await ask(client, "quiero un asesor", phone=PHONE)
            assert handed["owner"] == "queued"
            sent = await client.post("/api/v1/simulator/messages",
                                     json={"from": PHONE, "text": "¿puedo pagar en oxxo?"})
            message_id = uuid.UUID(sent.json()["message_id"])
            await asyncio.wait_for(gated.entered.wait(), 10)
            agent = await staff("agent")
            claim = await client.post(
                f"/api/v1/conversations/{handed['conversation_id']}/claim",
                headers=agent.headers)
            assert claim.status_code == 200
            gated.gate.set()
            outcome = await client.get(f"/api/v1/simulator/messages/{message_id}",
                                       params={"wait": 10})
            assert outcome.json()["replies"] == []
            async with rt.sessions() as session:
                leaked = (await session.scalars(select(Message.text).where(
                    Message.in_reply_to == message_id))).all()
            assert "Respuesta que NO debe salir" not in leaked
    finally:
        await rt.close()
