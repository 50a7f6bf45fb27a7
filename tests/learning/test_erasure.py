"""Knowledge suggestions are customer data: an erased customer's (masked) question and the
replies to them leave every suggestion, are in their export before, and a pending
suggestion only they fed goes whole; the others keep the other customers' items."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from bot.wiring.runtime import Runtime
from knowledge.demo import load_demo_if_empty
from knowledge.models import Suggestion, SuggestionItem
from tests.handoff.conftest import StaffFactory
from tests.learning.conftest import answer_and_resolve, handed_over, suggestions

PETS_REPLY = ("Sí, tenemos seguro para mascotas: perros y gatos de 3 meses a 9 años, gastos "
              "veterinarios por accidente o enfermedad hasta 30,000 pesos al año.")
DRONES_REPLY = "Por ahora no aseguramos drones ni aeronaves de ningún tipo, lo sentimos."
ROSA, LUIS = "+525520000071", "+525520000072"


async def test_erasing_a_customer_takes_their_part_of_the_suggestions(
    client: httpx.AsyncClient, runtime: Runtime, staff: StaffFactory
) -> None:
    await load_demo_if_empty(runtime.knowledge)
    agent, admin = await staff("agent"), await staff("admin")
    rosa = await handed_over(client, "¿Tienen seguro para mascotas? Tengo un perro", phone=ROSA)
    await answer_and_resolve(client, agent, rosa, [PETS_REPLY])
    rosa_drones = await handed_over(client, "¿Aseguran drones?", phone=ROSA)
    await answer_and_resolve(client, agent, rosa_drones, [DRONES_REPLY])
    luis = await handed_over(client, "oigan, ¿aseguran perros y gatos?", phone=LUIS)
    await answer_and_resolve(client, agent, luis, [PETS_REPLY])
    pending = await suggestions(client, admin, status="pending")
    assert sorted(s["count"] for s in pending) == [1, 2], pending

    exported = await client.get(f"/api/v1/contacts/sim:{ROSA}/export", headers=admin.headers)
    assert exported.status_code == 200, exported.text
    items = exported.json()["data"]["kb_suggestion_items"]
    assert len(items) == 2 and "question_vec" not in items[0]
    assert any("drones" in i["question"] for i in items)

    erased = await client.delete(f"/api/v1/contacts/sim:{ROSA}", headers=admin.headers)
    assert erased.status_code == 200, erased.text
    async with runtime.sessions() as s:
        left = (await s.execute(select(SuggestionItem.question))).scalars().all()
        kept = await s.scalar(select(func.count()).select_from(Suggestion))
    assert left == ["oigan, ¿aseguran perros y gatos?"]  # Luis's part only
    assert kept == 1  # the drones suggestion only Rosa fed is gone
