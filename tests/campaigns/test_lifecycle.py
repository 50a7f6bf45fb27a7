"""Opt-out everywhere, variant rotation, pause/resume/cancel, replies counted."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import timedelta

import httpx
from sqlalchemy import select, text, update

from bot.campaigns import CampaignDraft, CampaignScheduler
from bot.campaigns.models import CampaignRecipient
from bot.clock import FakeClock
from bot.wiring.runtime import Runtime
from handoff.conversations import Contact, Conversation, Message, contact_key
from tests.campaigns.helpers import csv_of, launched, other_day_window, phone
from tests.conftest import ask


def fake_scheduler(rt: Runtime) -> tuple[CampaignScheduler, FakeClock]:
    """A scheduler on a fake clock inside ``other_day_window`` (the real worker's tick
    finds the window closed and leaves the campaign to the test)."""
    _, inside = other_day_window()
    clock = FakeClock(inside)
    sched = CampaignScheduler(sessions=rt.sessions, outbox=rt.outbox, clock=clock,
                              rng=random.Random(3))
    return sched, clock


async def release(sched: CampaignScheduler, clock: FakeClock, cid: uuid.UUID) -> uuid.UUID | None:
    step = await sched.step(cid)
    if step.next_at is not None:
        clock.now = max(clock.now, step.next_at)
    return step.conversation_id


async def recipients(rt: Runtime, cid: uuid.UUID) -> dict[str, CampaignRecipient]:
    async with rt.sessions() as s:
        rows = (await s.execute(
            select(CampaignRecipient).where(CampaignRecipient.campaign_id == cid)
        )).scalars().all()
    return {r.phone_e164: r for r in rows}


async def campaign_texts(rt: Runtime, to: str) -> list[tuple[str | None, str]]:
    async with rt.sessions() as s:
        rows = (await s.execute(
            select(Message.text, Message.status)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(Contact.phone_e164 == contact_key("simulator", to),
                   Message.author == "campaign")
            .order_by(Message.seq)
        )).all()
    return [(r.text, r.status) for r in rows]


async def test_opt_out_stops_campaign_messages_even_already_scheduled(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    window, _ = other_day_window()
    cid = await launched(runtime, csv_of(4), window=window)
    sched, clock = fake_scheduler(runtime)

    # 0 gets its message; 1 answers "BAJA" before its turn: the bot confirms, it is skipped
    conv0 = await release(sched, clock, cid)
    assert conv0 is not None
    await runtime.outbox.send_pending(conv0)
    outcome = await ask(client, "BAJA porfa", phone=phone(1))
    assert outcome["intent"] == "opt_out"
    assert "no te enviaremos" in str(outcome["replies"])
    # 2 is released (row pending in the outbox) and then writes STOP: the row is cancelled
    conv2 = await release(sched, clock, cid)
    assert conv2 is not None
    assert await campaign_texts(runtime, phone(2)) == [
        ("Hola Cliente 2, tu pago de $102 vence pronto.", "pending")
    ]
    await ask(client, "STOP!!", phone=phone(2))
    assert [s for _, s in await campaign_texts(runtime, phone(2))] == ["cancelled"]
    # 3 opts out while a human owns the chat: no bot reply, but the opt-out holds
    async with runtime.sessions() as s, s.begin():
        await s.execute(
            text("INSERT INTO contacts (id, phone_e164, opted_out) VALUES (:id, :p, false)"),
            {"id": uuid.uuid4(), "p": contact_key("simulator", phone(3))},
        )
    await ask(client, "hola", phone=phone(3))
    async with runtime.sessions() as s, s.begin():
        await s.execute(
            update(Conversation)
            .where(Conversation.contact_id == select(Contact.id)
                   .where(Contact.phone_e164 == contact_key("simulator", phone(3)))
                   .scalar_subquery())
            .values(owner="human")
        )
    silent = await ask(client, "ya no me manden mensajes", phone=phone(3))
    assert silent["replies"] == []
    for _ in range(5):
        await release(sched, clock, cid)

    rows = await recipients(runtime, cid)
    assert {p: (r.status, r.reason) for p, r in rows.items()} == {
        phone(0): ("queued", None),
        phone(1): ("skipped", "opted_out"),
        phone(2): ("skipped", "opted_out"),
        phone(3): ("skipped", "opted_out"),
    }
    assert await campaign_texts(runtime, phone(1)) == []
    assert await campaign_texts(runtime, phone(3)) == []
    progress = (await runtime.campaigns.get(cid)).progress
    assert (progress.sent, progress.skipped, progress.waiting) == (1, 3, 0)
    # those opt-outs are the simulator contacts' own: a real list does not see them
    again = await runtime.campaigns.import_list(name="otra", data=csv_of(4), created_by=None)
    assert again.accepted == 4 and again.rejected == []
    # a real customer's opt-out keeps the number out of later imports, saying why
    async with runtime.sessions() as s, s.begin():
        await s.execute(
            text("INSERT INTO contacts (id, phone_e164, opted_out) VALUES (:id, :p, true)"),
            {"id": uuid.uuid4(), "p": phone(1)},
        )
    again = await runtime.campaigns.import_list(name="otra2", data=csv_of(4), created_by=None)
    assert again.accepted == 3
    assert [(r["reason"], r["phone"]) for r in again.rejected] == [("opted_out", phone(1))]


async def test_send_time_recheck_cancels_rows_of_opted_out_contacts(runtime: Runtime) -> None:
    window, _ = other_day_window()
    cid = await launched(runtime, csv_of(1), window=window)
    sched, clock = fake_scheduler(runtime)
    conversation = await release(sched, clock, cid)
    assert conversation is not None
    # a writer that bypasses the trigger (e.g. a bulk restore) still cannot get it sent
    trigger = "contacts_opt_out_cancels_campaigns"
    async with runtime.sessions() as s, s.begin():
        await s.execute(text(f"ALTER TABLE contacts DISABLE TRIGGER {trigger}"))
        await s.execute(
            update(Contact).where(Contact.phone_e164 == contact_key("simulator", phone(0)))
            .values(opted_out=True)
        )
        await s.execute(text(f"ALTER TABLE contacts ENABLE TRIGGER {trigger}"))
    assert await runtime.outbox.send_pending(conversation) == 0
    assert await campaign_texts(runtime, phone(0)) == [
        ("Hola Cliente 0, tu pago de $100 vence pronto.", "cancelled")
    ]


async def test_variants_rotate_and_fill_custom_fields(runtime: Runtime) -> None:
    window, _ = other_day_window()
    variants = ["Hola {nombre}, debes {monto}.", "{nombre}: tu saldo es {monto}.",
                "Buen día {nombre} 👋 recuerda tu pago de {monto}."]
    cid = await launched(runtime, csv_of(9), window=window, variants=variants)
    sched, clock = fake_scheduler(runtime)
    for _ in range(9):
        assert await release(sched, clock, cid) is not None
    rows = await recipients(runtime, cid)
    used = [rows[phone(i)].variant for i in range(9)]
    assert used == [0, 1, 2] * 3  # consecutive customers never get the same text
    assert Counter(used) == {0: 3, 1: 3, 2: 3}
    assert await campaign_texts(runtime, phone(4)) == [("Cliente 4: tu saldo es $104.", "pending")]
    assert await campaign_texts(runtime, phone(8)) == [
        ("Buen día Cliente 8 👋 recuerda tu pago de $108.", "pending")
    ]


async def test_pause_withdraws_unsent_rows_resume_continues_cancel_stops(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    window, _ = other_day_window()
    cid = await launched(runtime, csv_of(6), window=window)
    sched, clock = fake_scheduler(runtime)
    first = await release(sched, clock, cid)
    assert first is not None
    await runtime.outbox.send_pending(first)  # 0 sent
    await release(sched, clock, cid)  # 1 released, not yet sent
    paused = await runtime.campaigns.pause(cid, by=None)
    assert paused.status == "paused"
    assert (paused.progress.sent, paused.progress.waiting, paused.progress.queued) == (1, 5, 0)
    for _ in range(3):
        assert (await sched.step(cid)).conversation_id is None  # nothing while paused
        clock.advance(minutes=5)
    await runtime.campaigns.resume(cid, by=None)
    for _ in range(3):
        conv = await release(sched, clock, cid)
        assert conv is not None
        await runtime.outbox.send_pending(conv)
    cancelled = await runtime.campaigns.cancel(cid, by=None)
    assert cancelled.status == "cancelled"
    assert (await sched.step(cid)).conversation_id is None
    rows = await recipients(runtime, cid)
    assert [rows[phone(i)].status for i in range(6)] == ["queued"] * 4 + ["cancelled"] * 2
    # 1 got exactly one message that went out (the withdrawn row stays cancelled)
    assert [s for _, s in await campaign_texts(runtime, phone(1))] == ["cancelled", "sent"]
    progress = cancelled.progress
    assert (progress.sent, progress.cancelled, progress.waiting) == (4, 2, 0)
    assert [e["action"] for e in cancelled.events] == [
        "created", "launched", "pause", "resume", "cancel",
    ]
    # a reply lands in the normal flow (the bot answers) and counts for the campaign
    outcome = await ask(client, "hola, ya pagué", phone=phone(2))
    assert outcome["owner"] == "bot" and outcome["replies"]
    assert (await runtime.campaigns.get(cid)).progress.replied == 1
    assert await runtime.campaigns.campaign_of_conversation(
        uuid.UUID(str(outcome["conversation_id"]))
    ) == cid


async def test_cloud_numbers_send_the_approved_template_outside_the_24h_window(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    window, _ = other_day_window()
    cartera = await runtime.campaigns.import_list(name="c", data=csv_of(2), created_by=None)
    draft = CampaignDraft(
        name="cloud", list_id=cartera.id, channel="whatsapp_cloud", account="1234567890",
        variants=["Hola {nombre}, tu pago de {monto} vence pronto."], window=window,
        template_name="recordatorio_pago", template_params=["nombre", "monto"],
    )
    campaign = await runtime.campaigns.create(draft, created_by=None)
    await runtime.campaigns.launch(campaign.id, by=None)
    sched, clock = fake_scheduler(runtime)
    # customer 1 wrote to this number an hour ago (fake time): inside the window
    async with runtime.sessions() as s, s.begin():
        contact = uuid.uuid4()
        s.add(Contact(id=contact, phone_e164=phone(1), name="Cliente 1"))
        await s.flush()
        s.add(Conversation(id=uuid.uuid4(), contact_id=contact, channel="whatsapp_cloud",
                           account="1234567890", last_inbound_at=clock() - timedelta(hours=1)))
    for _ in range(2):
        assert await release(sched, clock, campaign.id) is not None
    async with runtime.sessions() as s:
        rows = (await s.execute(
            select(Contact.phone_e164, Message.text, Message.raw)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(Message.author == "campaign").order_by(Contact.phone_e164)
        )).all()
    assert rows[0].raw == {"template": {
        "name": "recordatorio_pago", "language": "es_MX",
        "components": [{"type": "body", "parameters": [
            {"type": "text", "text": "Cliente 0"}, {"type": "text", "text": "$100"}]}],
    }}
    assert rows[1].raw is None
    assert rows[1].text == "Hola Cliente 1, tu pago de $101 vence pronto."
