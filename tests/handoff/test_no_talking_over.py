"""The bot never talks over a human: claims during processing, resolve without loops, CSAT."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from bot.answering.responder import Decision, Persona, ResponseRequest, RuleResponder
from bot.i18n import t
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.conversations import Message
from handoff.tables import Ticket
from tests.conftest import ask
from tests.handoff.conftest import StaffFactory, client_for, staff_factory

PHONE = "+5215512340000"


class GatedResponder:
    """A responder that, once armed, holds its decision until the test opens the gate
    (an LLM that takes its time), and escalates when the history mentions an agent
    (as an LLM reading the whole context would: that is how handoff loops happen)."""

    def __init__(self) -> None:
        self.armed = False
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.calls: list[str] = []
        self._rules = RuleResponder(Persona("Atiende", "Seguros Atiende"))

    async def respond(self, request: ResponseRequest) -> Decision:
        self.calls.append(request.text)
        if self.armed:
            self.entered.set()
            await self.gate.wait()
            return Decision("question", 0.9, ("Respuesta del bot que NO debe salir",))
        if any("asesor" in turn.text for turn in request.history if turn.role == "customer"):
            return Decision("human_request", 0.9, (t("handoff"),), escalate=True,
                            reason="customer_request")
        return await self._rules.respond(request)


@pytest.fixture
def gated() -> GatedResponder:
    return GatedResponder()


@pytest.fixture
async def gated_runtime(
    settings: Settings, database_url: str, redis_url: str, gated: GatedResponder
) -> AsyncIterator[Runtime]:
    rt = await Runtime.create(settings, database_url=database_url, redis_url=redis_url,
                              responder=gated)
    rt.start_worker()
    yield rt
    await rt.close()


@pytest.fixture
async def gclient(gated_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_for(gated_runtime):
        yield c


@pytest.fixture
def gstaff(gated_runtime: Runtime, gclient: httpx.AsyncClient) -> StaffFactory:
    return staff_factory(gated_runtime, gclient)


async def test_claim_while_the_bot_is_thinking_silences_it(
    gclient: httpx.AsyncClient, gated_runtime: Runtime, gated: GatedResponder,
    gstaff: StaffFactory,
) -> None:
    first = await ask(gclient, "hola", phone=PHONE)
    conversation_id = str(first["conversation_id"])
    # a supervisor: an agent may not take over a conversation only the bot has handled
    agent = await gstaff("supervisor")
    gated.armed = True
    accepted = await gclient.post("/api/v1/simulator/messages",
                                  json={"from": PHONE, "text": "cuanto cuesta el seguro de auto"})
    message_id = accepted.json()["message_id"]
    await asyncio.wait_for(gated.entered.wait(), 10)  # the bot is deciding right now
    # an agent takes the conversation over while the bot is deciding
    took = await gclient.post(
        "/api/v1/conversations", json={"phone": PHONE, "text": "Hola, yo te atiendo"},
        headers=agent.headers,
    )
    assert took.status_code == 201 and took.json()["conversation_id"] == conversation_id
    gated.armed = False
    gated.gate.set()
    outcome = (await gclient.get(f"/api/v1/simulator/messages/{message_id}",
                                 params={"wait": 10})).json()
    assert outcome["status"] == "processed" and outcome["owner"] == "human"
    assert outcome["replies"] == []
    async with gated_runtime.sessions() as session:
        texts = (await session.execute(
            select(Message.text).where(Message.conversation_id == uuid.UUID(conversation_id),
                                       Message.direction == "out")
        )).scalars().all()
    assert "Respuesta del bot que NO debe salir" not in texts
    # and the next message arriving after the claim is silent too
    later = await ask(gclient, "ok gracias, espero", phone=PHONE)
    assert later["owner"] == "human" and later["replies"] == []


async def test_resolve_then_message_has_no_handoff_loop_and_captures_csat(
    gclient: httpx.AsyncClient, gated_runtime: Runtime, gated: GatedResponder,
    gstaff: StaffFactory,
) -> None:
    out = await ask(gclient, "necesito un asesor, chocaron mi carro", phone=PHONE)
    assert out["owner"] == "queued"
    conversation_id = str(out["conversation_id"])
    agent = await gstaff("agent")
    url = f"/api/v1/conversations/{conversation_id}"
    assert (await gclient.post(f"{url}/claim", headers=agent.headers)).status_code == 200
    await gclient.post(f"{url}/messages", json={"text": "Ya levanté tu siniestro, folio 123"},
                       headers=agent.headers)
    assert (await gclient.post(f"{url}/resolve", headers=agent.headers)).status_code == 200

    # the customer's next message is the CSAT answer: stored, thanked, not sent to the bot
    calls = len(gated.calls)
    rated = await ask(gclient, "5", phone=PHONE)
    assert rated["intent"] == "csat" and rated["owner"] == "bot"
    assert rated["replies"] and "calificación" in str(rated["replies"][0])  # type: ignore[index]
    assert len(gated.calls) == calls
    async with gated_runtime.sessions() as session:
        ticket = (await session.execute(select(Ticket))).scalar_one()
    assert ticket.csat_score == 5 and ticket.outcome == "resolved" and not ticket.csat_open

    # fresh context: the old "asesor" turns are gone, so the bot answers, no re-escalation
    thanks = await ask(gclient, "muchas gracias!!", phone=PHONE)
    assert thanks["owner"] == "bot" and thanks["escalated"] is False
    assert thanks["replies"]
    again = await ask(gclient, "4", phone=PHONE)  # no open question now: goes to the bot
    assert again["intent"] != "csat" and again["owner"] == "bot"


async def test_non_numeric_answer_closes_the_csat_window(
    gclient: httpx.AsyncClient, gated_runtime: Runtime, gstaff: StaffFactory
) -> None:
    out = await ask(gclient, "quiero un asesor", phone=PHONE)
    agent = await gstaff("agent")
    url = f"/api/v1/conversations/{out['conversation_id']}"
    await gclient.post(f"{url}/claim", headers=agent.headers)
    await gclient.post(f"{url}/resolve", headers=agent.headers)
    other = await ask(gclient, "hola otra pregunta", phone=PHONE)
    assert other["intent"] != "csat"
    late = await ask(gclient, "5", phone=PHONE)
    assert late["intent"] != "csat"
    async with gated_runtime.sessions() as session:
        ticket = (await session.execute(select(Ticket))).scalar_one()
    assert ticket.csat_score is None and not ticket.csat_open
