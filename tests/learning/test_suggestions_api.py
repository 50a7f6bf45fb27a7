"""Knowledge suggestions over HTTP: roles, grouping of one question asked twice, extending
an article, marked replies, bad input (an "ok"/emoji reply, no agent reply, an empty
body, two admins approving at once), the privacy check on approved text, the figures."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import func, select

from bot.wiring.runtime import Runtime
from knowledge.demo import load_demo_if_empty
from knowledge.models import Article, HarvestedTicket, Suggestion, Version
from tests.conftest import ask
from tests.handoff.conftest import Staff, StaffFactory
from tests.learning.conftest import answer_and_resolve, handed_over, suggestions

PETS = "¿Tienen seguro para mascotas? Tengo un perro"
PETS_AGAIN = "oigan, ¿aseguran perros y gatos?"
PETS_REPLY = ("Sí, tenemos seguro para mascotas: perros y gatos de 3 meses a 9 años, gastos "
              "veterinarios por accidente o enfermedad hasta 30,000 pesos al año. Cuesta desde "
              "250 pesos al mes.")
PETS_REPLY_2 = ("Claro, el seguro de mascotas cubre al veterinario por accidente o enfermedad "
                "hasta 30,000 pesos al año, para perros y gatos de hasta 9 años, desde 250 "
                "pesos mensuales.")


async def one_pending(client: httpx.AsyncClient, who: Staff) -> dict[str, object]:
    pending = await suggestions(client, who, status="pending")
    assert len(pending) == 1, pending
    return pending[0]


async def test_roles_grouping_and_approval(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    await load_demo_if_empty(runtime.knowledge)
    agent, admin, supervisor = await staff("agent"), await staff("admin"), await staff("supervisor")
    first = await handed_over(client, f"Hola, soy Rosa Salas. {PETS}", phone="+5215520000001",
                              name="Rosa Salas")
    await answer_and_resolve(client, agent, first, ["Hola Rosa 😊", PETS_REPLY, "¿Algo más?"])
    second = await handed_over(client, PETS_AGAIN, phone="+5215520000002")
    await answer_and_resolve(client, agent, second, [PETS_REPLY_2])

    url = "/api/v1/knowledge/suggestions"
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers=agent.headers)).status_code == 403
    s = await one_pending(client, supervisor)  # supervisors read
    assert s["count"] == 2 and len(s["questions"]) == 2 and s["status"] == "pending"
    assert "Hola [nombre] 😊" not in s["replies"] and "¿Algo más?" not in s["replies"]
    assert s["masked"] == {"name": 1}  # the customer's name never reaches anyone
    assert all("Rosa" not in text for text in [*s["questions"], *s["replies"]])
    assert s["draft"]["source"] == "replies" and "30,000" in s["draft"]["body"]
    approve = f"{url}/{s['id']}/approve"
    body = {"title": s["draft"]["title"], "body": s["draft"]["body"]}
    assert (await client.post(approve, json=body, headers=supervisor.headers)).status_code == 403
    assert (await client.post(f"{url}/{s['id']}/dismiss",
                              headers=supervisor.headers)).status_code == 403

    r = await client.post(approve, json=body, headers=admin.headers)
    assert r.status_code == 200, r.text
    article_id = r.json()["article_id"]
    assert r.json()["created"] is True
    article = await runtime.knowledge.get_article(article_id)
    assert set(article.questions) == {"¿Tienen seguro para mascotas? Tengo un perro",
                                      "oigan, ¿aseguran perros y gatos?"}
    out = await ask(client, "quiero asegurar a mi gato, ¿tienen seguro para mascotas?",
                    phone="+5215520000003")
    assert out["sources"][0] == article_id and not out["escalated"]

    again = await client.post(approve, json=body, headers=admin.headers)
    assert again.status_code == 409 and again.json()["article_id"] == article_id
    dismissed = await client.post(f"{url}/{s['id']}/dismiss", headers=admin.headers)
    assert dismissed.status_code == 409
    listed = await suggestions(client, admin, status="approved")
    assert listed[0]["article_id"] == article_id and listed[0]["action"] == "create"
    figures = (await client.get(f"{url}/figures", headers=supervisor.headers)).json()
    assert figures["gaps_closed"] == 1 and figures["customers_answered"] == 1
    assert figures["answers"] == 1 and figures["pending"] == 0


async def test_extending_an_existing_article(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    await load_demo_if_empty(runtime.knowledge)
    agent, admin = await staff("agent"), await staff("admin")
    conversation = await handed_over(client, "¿Tienen garantía extendida para electrodomésticos?",
                                     phone="+5215520000011")
    reply = ("No vendemos garantías extendidas, pero el Seguro de Hogar Integral cubre tus "
             "electrodomésticos por daño eléctrico (variaciones de voltaje o un rayo) hasta "
             "40,000 pesos por evento.")
    await answer_and_resolve(client, agent, conversation, [reply])
    s = await one_pending(client, admin)
    before = await runtime.knowledge.get_article("seguro-hogar")
    r = await client.post(f"/api/v1/knowledge/suggestions/{s['id']}/approve",
                          json={"article_id": "seguro-hogar", "body": reply},
                          headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"article_id": "seguro-hogar", "created": False,
                        "version": before.version + 1}
    after = await runtime.knowledge.get_article("seguro-hogar")
    assert after.body.startswith(before.body.rstrip()) and "voltaje" in after.body
    assert "## ¿Tienen garantía extendida para electrodomésticos?" in after.body
    assert set(before.questions) < set(after.questions)
    out = await ask(client, "una variación de voltaje descompuso mi lavadora, ¿el seguro de "
                    "hogar lo cubre?", phone="+5215520000012")
    assert out["sources"][0] == "seguro-hogar"
    missing = await client.post(f"/api/v1/knowledge/suggestions/{s['id']}/approve",
                                json={"article_id": "no-existe", "body": reply},
                                headers=admin.headers)
    assert missing.status_code in (404, 409)


async def test_replies_that_teach_nothing_make_no_suggestion(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    await load_demo_if_empty(runtime.knowledge)
    agent, admin = await staff("agent"), await staff("admin")
    ok = await handed_over(client, "¿Aseguran drones?", phone="+5215520000021")
    await answer_and_resolve(client, agent, ok, ["ok", "👍"])
    silent = await handed_over(client, "¿Aseguran lanchas o embarcaciones?",
                               phone="+5215520000022")
    r = await client.post(f"/api/v1/conversations/{silent}/resolve", headers=agent.headers)
    assert r.status_code == 200, r.text
    open_one = await handed_over(client, "¿Aseguran bicicletas? Tengo una bici de montaña cara",
                                 phone="+5215520000023")
    await answer_and_resolve(client, agent, open_one, [PETS_REPLY], resolve=False)

    assert await suggestions(client, admin) == []
    async with runtime.sessions() as session:
        outcomes = sorted((await session.scalars(select(HarvestedTicket.outcome))).all())
    assert outcomes == ["no_reply", "trivial_reply"]  # the unresolved one waits


async def test_bad_approvals_write_nothing(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    await load_demo_if_empty(runtime.knowledge)
    agent, admin = await staff("agent"), await staff("admin")
    conversation = await handed_over(
        client, "Soy Karla Ibarra, ¿aseguran drones?", phone="+5215520000031",
        name="Karla Ibarra")
    # (a number in the customer's own message routes it to 'account', not 'no_answer':
    # here the agent repeats the customer's phone)
    await answer_and_resolve(client, agent, conversation, [
        "Hola Karla, sí aseguramos drones de hasta 25 kg con responsabilidad civil hasta "
        "1,000,000 de pesos. Te marco al 55 4321 8765 para cotizarlo."])
    s = await one_pending(client, admin)
    assert s["masked"] == {"name": 2, "phone": 1}
    assert "55 4321 8765" not in str(s) and "Karla" not in str(s) and "Ibarra" not in str(s)
    url = f"/api/v1/knowledge/suggestions/{s['id']}/approve"
    articles = await _articles(runtime)

    for body, reason in (
        ({"title": "Drones", "body": "   "}, "empty"),
        ({"body": "Sí aseguramos drones."}, "title"),
        ({"title": "Drones", "body": "Llama a Karla al 55 4321 8765."}, "personal data"),
        ({"title": "Drones", "body": "ok", "surprise": 1}, "extra"),
    ):
        r = await client.post(url, json=body, headers=admin.headers)
        assert r.status_code == 422, (body, r.text)
        if reason != "extra":
            assert reason in r.text, r.text
    assert (await client.post(f"/api/v1/knowledge/suggestions/{uuid.uuid4()}/approve",
                              json={"title": "x", "body": "y"},
                              headers=admin.headers)).status_code == 404
    assert await _articles(runtime) == articles

    # two admins at the same instant: one article, one 409, never a half article
    other = await _other_admin(client, runtime)
    body = {"title": s["draft"]["title"], "body": s["draft"]["body"]}
    first, second = await asyncio.gather(
        client.post(url, json=body, headers=admin.headers),
        client.post(url, json=body, headers=other.headers),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    assert await _articles(runtime) == articles + 1
    async with runtime.sessions() as session:
        winner = (first if first.status_code == 200 else second).json()["article_id"]
        versions = await session.scalar(
            select(func.count()).select_from(Version).where(Version.key == winner))
        row = await session.get(Suggestion, uuid.UUID(str(s["id"])))
    assert versions == 1 and row is not None and row.article_id == winner


async def test_marking_a_reply_in_the_inbox(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    await load_demo_if_empty(runtime.knowledge)
    agent, other, admin = await staff("agent"), await staff("agent"), await staff("admin")
    out = await ask(client, "¿Cuál es el horario del sábado?", phone="+5215520000041")
    conversation = str(out["conversation_id"])
    base = f"/api/v1/conversations/{conversation}/messages"
    ask_more = await ask(client, "¿y tienen estacionamiento para motos?", phone="+5215520000041")
    assert ask_more["conversation_id"] == conversation
    sent = await client.post(base, json={"text": "Sí, hay estacionamiento gratis para motos "
                                         "en el sótano del edificio, junto al elevador."},
                             headers=agent.headers)
    short = await client.post(base, json={"text": "👍"}, headers=agent.headers)
    reply, thumbs = sent.json()["message_id"], short.json()["message_id"]

    mark = f"{base}/{reply}/suggestion"
    assert (await client.post(mark, headers=other.headers)).status_code == 403
    r = await client.post(mark, headers=agent.headers)
    assert r.status_code == 201, r.text
    again = await client.post(mark, headers=agent.headers)
    assert again.status_code == 201 and again.json() == r.json()  # marked once
    trivial = await client.post(f"{base}/{thumbs}/suggestion", headers=agent.headers)
    assert trivial.status_code == 422 and "too little" in trivial.text
    unknown = await client.post(f"{base}/{uuid.uuid4()}/suggestion", headers=agent.headers)
    assert unknown.status_code == 422

    listed = await client.get("/api/v1/knowledge/suggestions", headers=admin.headers)
    assert listed.status_code == 200 and len(listed.json()) == 1, (r.json(), listed.text)
    s = listed.json()[0]
    assert s["questions"] == ["¿y tienen estacionamiento para motos?"]
    assert s["count"] == 1 and "sótano" in s["replies"][0]


async def test_openapi_documents_the_suggestions(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/api/v1/knowledge/suggestions", "/api/v1/knowledge/suggestions/{suggestion_id}"
                 "/approve", "/api/v1/knowledge/suggestions/{suggestion_id}/dismiss",
                 "/api/v1/conversations/{conversation_id}/messages/{message_id}/suggestion"):
        assert path in paths, path


async def _articles(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Article)) or 0)


async def _other_admin(client: httpx.AsyncClient, runtime: Runtime) -> Staff:
    from tests.handoff.conftest import staff_factory

    return await staff_factory(runtime, client)("admin")
