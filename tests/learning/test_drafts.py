"""LLM drafts of suggestions, against a scripted OpenAI-compatible server on 127.0.0.1:
a draft grounded in the agents' words is kept (masked items stay masked), a draft that
invents an amount or is not JSON is refused (the admin then sees the agents' reply), and
the worker's drafting step stores the LLM draft the admin sees."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

from bot.answering.generation import DraftRequest, PersonaText
from bot.learning.drafting import SuggestionDrafts
from bot.llm import LLMChain, LLMMetrics
from bot.llm.drafting import ChainArticleDrafter
from bot.llm.scripted import Behaviour, ScriptedServer
from bot.wiring.runtime import Runtime
from knowledge.demo import load_demo_if_empty
from tests.handoff.conftest import StaffFactory
from tests.learning.conftest import answer_and_resolve, handed_over, suggestions
from tests.llm.conftest import chain_config, deployment

PERSONA = PersonaText("Atiende", "Seguros Atiende")
QUESTIONS = ("¿Tienen seguro para mascotas?", "¿aseguran perros y gatos?")
REPLIES = ("Sí, tenemos seguro para mascotas: perros y gatos de 3 meses a 9 años, gastos "
           "veterinarios hasta 30,000 pesos al año. Cuesta desde 250 pesos al mes. Escríbenos "
           "a [correo] para cotizar.",)
GROUNDED = {"title": "¿Tienen seguro para mascotas?",
            "body": "Sí: cubre perros y gatos de 3 meses a 9 años, con gastos veterinarios "
                    "hasta 30,000 pesos al año, desde 250 pesos al mes. Cotiza en {correo}."}
INVENTED = {"title": "Seguro para mascotas",
            "body": "Cubre gastos veterinarios hasta 80,000 pesos al año."}


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedServer]:
    with ScriptedServer(default=Behaviour.answer(json.dumps(GROUNDED))) as server:
        yield server


async def drafter_on(server: ScriptedServer) -> tuple[ChainArticleDrafter, LLMChain]:
    chain = LLMChain(metrics=LLMMetrics(CollectorRegistry()))
    await chain.apply(chain_config([deployment("primary", server)]), source="test", warm=False)
    return ChainArticleDrafter(chain), chain


def request(seconds: float = 8) -> DraftRequest:
    return DraftRequest(questions=QUESTIONS, replies=REPLIES, language="es", persona=PERSONA,
                        deadline=asyncio.get_running_loop().time() + seconds)


async def test_a_grounded_draft_is_kept(scripted: ScriptedServer) -> None:
    drafter, chain = await drafter_on(scripted)
    try:
        drafted = await drafter.draft(request())
    finally:
        chain.close()
    assert drafted is not None and drafted.model == "openai/gpt-4o-mini"
    assert drafted.title == GROUNDED["title"]
    assert "30,000 pesos" in drafted.body and "[correo]" in drafted.body  # still masked
    sent = scripted.received[0].body["messages"]
    assert "<reply" in sent[1]["content"] and "{correo}" in sent[1]["content"]


@pytest.mark.parametrize("said", [json.dumps(INVENTED), "Claro, aquí va el artículo: mascotas"])
async def test_an_invented_or_broken_draft_is_refused(said: str) -> None:
    with ScriptedServer(default=Behaviour.answer(said)) as server:
        drafter, chain = await drafter_on(server)
        try:
            assert await drafter.draft(request()) is None
        finally:
            chain.close()
        assert server.calls >= 1


async def test_the_admin_sees_the_llm_draft(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory,
    scripted: ScriptedServer,
) -> None:
    await load_demo_if_empty(runtime.knowledge)
    agent, admin = await staff("agent"), await staff("admin")
    conversation = await handed_over(client, QUESTIONS[0], phone="+5215540000001")
    await answer_and_resolve(client, agent, conversation, list(REPLIES))
    before = await suggestions(client, admin, status="pending")
    assert len(before) == 1 and before[0]["draft"]["source"] == "replies"
    # the running bot's own job, with no LLM configured yet, leaves it to be drafted later
    await runtime.learning.tick()

    drafter, chain = await drafter_on(scripted)
    try:
        drafts = SuggestionDrafts(runtime.learning.suggestions, drafter, persona=PERSONA,
                                  language="es", timeout_seconds=8, per_tick=3)
        assert await drafts.run() == 1
        assert await drafts.run() == 0  # drafted once per change of its items
    finally:
        chain.close()
    after = (await suggestions(client, admin, status="pending"))[0]
    assert after["draft"]["source"] == "llm" and after["draft"]["model"] == "openai/gpt-4o-mini"
    assert after["draft"]["body"].startswith("Sí: cubre perros y gatos")
    r = await client.post(f"/api/v1/knowledge/suggestions/{after['id']}/approve",
                          json={"title": after["draft"]["title"], "body": after["draft"]["body"]},
                          headers=admin.headers)
    assert r.status_code == 200, r.text
