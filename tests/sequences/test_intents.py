"""Automatic enrollment by an intent the admin picks (here: every handed-over request
for a person), and the per-step figures."""

from __future__ import annotations

import asyncio

import httpx

from bot.channels.simulator import SIMULATOR
from bot.clock import FakeClock
from bot.sequences import SequenceDraft, Step
from bot.wiring.runtime import Runtime
from handoff.conversations import contact_key
from tests.conftest import ask
from tests.sequences.helpers import sent_to

PHONE = "+525577778888"
OTHER = "+525577779999"


async def test_a_handed_over_request_enrolls_the_customer_once(
    rt: Runtime, api: httpx.AsyncClient, fake_clock: FakeClock, headers  # type: ignore[no-untyped-def]
) -> None:
    draft = SequenceDraft(
        name="seguimiento asesor", auto_intent="human_request", auto_escalated_only=True,
        on_reply="continue", on_human="pause",
        steps=(Step(delay_minutes=120, text="Hola {nombre}, ¿te atendieron bien?"),))
    sequence = await rt.sequences.create(draft, by=None)
    await rt.sequence_ticker.tick()  # the watcher starts reading from here

    handed = await ask(api, "quiero hablar con un asesor", phone=PHONE, name="Marta")
    assert (handed["intent"], handed["escalated"], handed["owner"]) == (
        "human_request", True, "queued")
    await ask(api, "hola buenas tardes", phone=OTHER)  # another intent: not enrolled
    await ask(api, "un asesor por favor", phone=PHONE)  # again while enrolled: once only
    await asyncio.sleep(2.1)  # the watcher leaves the last 2 s to transactions in flight
    result = await rt.sequence_ticker.tick()
    assert result.enrolled_by_intent == 1
    supervisor = await headers("supervisor")
    rows = (await api.get(f"/api/v1/sequences/{sequence.id}/enrollments",
                          headers=supervisor)).json()
    assert [(r["phone"], r["source"], r["state"]) for r in rows] == [(PHONE, "intent", "active")]
    assert (await rt.sequence_ticker.tick()).enrolled_by_intent == 0  # read once

    # still with the team 2 hours later: the follow-up waits; after the handback it goes
    fake_clock.advance(minutes=121)
    assert (await rt.sequence_ticker.tick()).waiting == 1
    conversation = rows[0]["conversation_id"]
    await api.post(f"/api/v1/conversations/{conversation}/claim", headers=supervisor)
    await api.post(f"/api/v1/conversations/{conversation}/resolve", headers=supervisor)
    fake_clock.advance(minutes=121)
    await rt.sequence_ticker.tick()
    assert await sent_to(rt, PHONE) == [("Hola Marta, ¿te atendieron bien?", "sent")]
    assert await sent_to(rt, OTHER) == []


async def test_per_step_figures_count_sent_delivered_read_replied_and_stopped(
    rt: Runtime, api: httpx.AsyncClient, fake_clock: FakeClock, headers  # type: ignore[no-untyped-def]
) -> None:
    from bot.channels.receipts import DeliveryStatus, Receipt
    from tests.sequences.test_blocking import _deliver

    draft = SequenceDraft(name="cifras", on_reply="stop", steps=(
        Step(delay_minutes=0, text="uno"), Step(delay_minutes=60, text="dos")))
    sequence_id = (await rt.sequences.create(draft, by=None)).id
    phones = [f"+52557000{i:04d}" for i in range(4)]
    for phone in phones:
        await rt.sequences.enroll_phone(sequence_id, phone=phone, by=None)
    await _deliver(rt, phones[:3])  # 3 of 4 delivered…
    async with rt.sessions() as s:
        from sqlalchemy import select

        from handoff.conversations import Contact, Conversation, Message
        read = (await s.execute(
            select(Message.provider_message_id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(Contact.phone_e164 == contact_key(SIMULATOR, phones[0]),
                   Message.author == "sequence"))).scalar_one()
    await rt.receipts.record(Receipt("simulator", (read,), DeliveryStatus.READ))  # …1 read
    await ask(api, "gracias, ya lo vi", phone=phones[1])  # one replies: stops before step 2
    fake_clock.advance(minutes=61)
    await rt.sequence_ticker.tick()
    supervisor = await headers("supervisor")
    figures = (await api.get(f"/api/v1/sequences/{sequence_id}", headers=supervisor)).json()
    one, two = figures["analytics"]
    assert {k: one[k] for k in ("sent", "delivered", "read", "replied", "stopped")} == {
        "sent": 4, "delivered": 3, "read": 1, "replied": 1, "stopped": 0}
    assert {k: two[k] for k in ("sent", "delivered", "read", "replied", "stopped")} == {
        "sent": 3, "delivered": 0, "read": 0, "replied": 0, "stopped": 1}
    assert figures["enrollments"] == {"active": 0, "stopped": 1, "completed": 3}
    page = await api.get("/admin/sequences", headers=supervisor)
    assert page.status_code == 200 and "cifras" in page.text
