"""Blocked contacts, on a fake clock: a real block (no delivery receipts to one contact)
is marked after the configured evidence and not before; a 4-day outage on our side marks
nobody; deliveries, inbound messages and agents clear the mark; marked contacts are left
out of sequences and campaigns."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import func, select

from bot.blocking import DetectorRun
from bot.blocking.models import ContactBlock
from bot.channels.receipts import DeliveryStatus, Receipt
from bot.channels.simulator import SIMULATOR
from bot.clock import FakeClock
from bot.sequences import SequenceDraft, Step
from bot.wiring.runtime import Runtime
from handoff.conversations import Contact, Conversation, Message, contact_key
from tests.campaigns.helpers import launched
from tests.conftest import ask
from tests.sequences.helpers import enrollment

NORMAL = [f"+52551000{i:04d}" for i in range(7)]
BLOCKER = "+525519999999"
DAY = 24 * 60


async def _daily(
    rt: Runtime, api: httpx.AsyncClient, days: int, phones: list[str] | None = None
) -> dict[str, uuid.UUID]:
    """A number with a history (one delivered reply: receipts are known to flow), and
    everyone enrolled in a sequence of one message a day (the first goes out now)."""
    await ask(api, "hola", phone=NORMAL[0])
    for _ in range(100):  # the bot's reply leaves the outbox just after the commit
        if await _deliver(rt, NORMAL[:1]):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the bot's reply was never sent")
    draft = SequenceDraft(name="diaria", on_reply="continue", steps=tuple(
        Step(delay_minutes=0 if i == 0 else DAY, text=f"Recordatorio {i + 1}")
        for i in range(days)))
    sequence_id = (await rt.sequences.create(draft, by=None)).id
    return {phone: (await rt.sequences.enroll_phone(sequence_id, phone=phone, by=None)).id
            for phone in phones or [*NORMAL, BLOCKER]}


async def _deliver(rt: Runtime, phones: list[str], *, after_seq: int = 0) -> int:
    """Delivery receipts for the messages still at 'sent' to ``phones`` (only those
    after ``after_seq``: the receipts of older ones were lost)."""
    async with rt.sessions() as s:
        ids = (await s.execute(
            select(Message.provider_message_id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(Contact.phone_e164.in_([contact_key(SIMULATOR, p) for p in phones]),
                   Message.status == "sent",
                   Message.seq > after_seq)
        )).scalars().all()
    return await rt.receipts.record(
        Receipt("simulator", tuple(i for i in ids if i), DeliveryStatus.DELIVERED))


async def _day(
    rt: Runtime, clock: FakeClock, *, receipts: bool, phones: list[str] = NORMAL
) -> list[DetectorRun]:
    """One day: the morning's step goes out (and is delivered to everyone but the blocker
    unless receipts are lost), then the detector runs every 6 hours."""
    async with rt.sessions() as s:
        before = (await s.execute(select(func.coalesce(func.max(Message.seq), 0)))).scalar_one()
    await rt.sequence_ticker.tick()
    if receipts:
        await _deliver(rt, phones, after_seq=before)
    runs = []
    for _ in range(4):
        runs.append(await rt.block_detector.run())
        clock.advance(hours=6)
    return runs


def _marked(runs: list[DetectorRun]) -> set[uuid.UUID]:
    return {c for run in runs for c in run.blocked}


async def _conversation(rt: Runtime, phone: str) -> uuid.UUID:
    async with rt.sessions() as s:
        return (await s.execute(
            select(Conversation.id).join(Contact, Contact.id == Conversation.contact_id)
            .where(Contact.phone_e164 == contact_key(SIMULATOR, phone)))).scalar_one()


async def test_a_real_block_is_marked_after_the_configured_evidence_and_not_before(
    rt: Runtime, api: httpx.AsyncClient, fake_clock: FakeClock, headers  # type: ignore[no-untyped-def]
) -> None:
    enrolled = await _daily(rt, api, 10)
    blocker = await _conversation(rt, BLOCKER)
    await _deliver(rt, NORMAL)
    runs = [await rt.block_detector.run()]
    fake_clock.advance(hours=24)
    for _ in range(4):  # days 1-4: 3 undelivered on day 2, then watched 24 h, 48 h
        runs += await _day(rt, fake_clock, receipts=True)
    assert _marked(runs) == set()
    mark = await rt.block_detector.run()
    assert mark.blocked == []
    fifth = await _day(rt, fake_clock, receipts=True)  # day 5: 72 h of receipts since
    assert _marked(fifth) == {blocker}

    supervisor = await headers("supervisor")
    shown = (await api.get(f"/api/v1/conversations/{blocker}/blocked", headers=supervisor))
    body = shown.json()
    assert body["blocked"] is True and body["undelivered"] == 6
    assert body["evidence"]["rule"] == {"messages": 3, "hours": 72.0}
    assert body["evidence"]["watched_hours"] >= 72 and len(body["evidence"]["messages"]) == 6
    listed = (await api.get("/api/v1/blocked-contacts", headers=supervisor)).json()
    assert [b["contact_phone"] for b in listed] == [BLOCKER]

    # left out of the sequence at its next step, and out of a campaign
    await rt.sequence_ticker.tick()
    row = await enrollment(rt, enrolled[BLOCKER])
    assert (row.state, row.stop_reason, row.steps_queued) == ("stopped", "probably_blocked", 6)
    assert (await enrollment(rt, enrolled[NORMAL[0]])).state == "active"
    refused = await api.post(f"/api/v1/conversations/{blocker}/sequences", headers=supervisor,
                             json={"sequence_id": str(row.sequence_id)})
    assert refused.status_code == 409 and refused.json()["code"] == "probably_blocked"
    campaign = await launched(rt, b"telefono,nombre\n5519999999,Bloqueado\n5510000000,Ana\n",
                              variants=["Hola {nombre}"])
    await rt.campaign_scheduler.step(campaign)
    await rt.campaign_scheduler.step(campaign)
    recipients = {r.phone_e164: (r.status, r.reason)
                  for r in await rt.campaigns.recipients(campaign)}
    assert recipients[BLOCKER] == ("skipped", "probably_blocked")
    assert recipients[NORMAL[0]][0] == "queued"

    # an agent clears it; the old undelivered messages are no longer evidence
    cleared = await api.delete(f"/api/v1/conversations/{blocker}/blocked", headers=supervisor)
    assert cleared.status_code == 200 and cleared.json()["cleared_reason"] == "agent"
    again = await api.delete(f"/api/v1/conversations/{blocker}/blocked", headers=supervisor)
    assert again.status_code == 404
    assert (await rt.block_detector.run()).suspected == 0


async def test_an_outage_of_four_days_marks_nobody(
    rt: Runtime, api: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    # the trap: customers whose last follow-ups went out during the outage have several
    # undelivered messages and never get another one, while the number's receipts flow
    # again for everyone else
    short, others = NORMAL[:4], NORMAL[4:]
    await _daily(rt, api, 16, phones=[*others, BLOCKER])
    draft = SequenceDraft(name="corta", on_reply="continue", steps=tuple(
        Step(delay_minutes=0 if i == 0 else DAY, text=f"Aviso {i + 1}") for i in range(5)))
    short_id = (await rt.sequences.create(draft, by=None)).id
    for phone in short:
        await rt.sequences.enroll_phone(short_id, phone=phone, by=None)
    await _deliver(rt, NORMAL)
    runs = [await rt.block_detector.run()]
    fake_clock.advance(hours=24)
    outage: list[DetectorRun] = []
    for _ in range(4):  # days 1-4: messages still go out, no receipt reaches us
        outage += await _day(rt, fake_clock, receipts=False)
    after: list[DetectorRun] = []
    for _ in range(8):  # days 5-12: receipts again for what is sent (the lost stay lost)
        after += await _day(rt, fake_clock, receipts=True, phones=others)
    short_conversations = {await _conversation(rt, p) for p in short}
    async with rt.sessions() as s:
        lost = (await s.execute(
            select(func.count()).select_from(Message)
            .where(Message.conversation_id.in_(short_conversations), Message.status == "sent")
        )).scalar_one()
    assert lost == 4 * len(short)  # each lost the receipts of its last 4 follow-ups
    assert _marked(runs + outage + after) & short_conversations == set()
    assert _marked(outage) == set()
    assert any(run.outages for run in outage)  # seen as an outage, not as many blocks
    # the real block is still found, from what was sent after the receipts came back
    assert _marked(after) == {await _conversation(rt, BLOCKER)}


async def test_a_delivery_or_a_message_from_the_customer_clears_the_mark(
    rt: Runtime, api: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    await _daily(rt, api, 12)
    blocker = await _conversation(rt, BLOCKER)
    await _deliver(rt, NORMAL)
    fake_clock.advance(hours=24)
    runs: list[DetectorRun] = []
    for _ in range(5):
        runs += await _day(rt, fake_clock, receipts=True)
    assert _marked(runs) == {blocker}
    assert await rt.blocked.of_conversation(blocker) is not None

    await _deliver(rt, [BLOCKER])  # a late receipt: the customer's phone got it
    assert await rt.blocked.of_conversation(blocker) is None

    runs = []
    for _ in range(6):
        runs += await _day(rt, fake_clock, receipts=True)
    assert _marked(runs) == {blocker}  # marked again from new evidence
    await ask(api, "perdón, tenía el teléfono apagado", phone=BLOCKER)
    await rt.block_detector.run()
    assert await rt.blocked.of_conversation(blocker) is None


async def test_an_erased_customer_is_watched_no_more(
    rt: Runtime, api: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    """The evidence of a block is about the person: once they are erased, undelivered
    messages to their old conversation never mark them again (their rows went with them)."""
    from bot.privacy import CustomerRef
    from handoff.audit import Actor

    await _daily(rt, api, 10)
    blocker = await _conversation(rt, BLOCKER)
    await _deliver(rt, NORMAL)
    runs = [await rt.block_detector.run()]
    fake_clock.advance(hours=24)
    for _ in range(3):  # undelivered to the blocker, being watched (suspected)
        runs += await _day(rt, fake_clock, receipts=True)
    async with rt.sessions() as s:
        watched = await s.scalar(select(func.count()).select_from(ContactBlock)
                                 .where(ContactBlock.conversation_id == blocker))
    assert watched == 1
    erased = await rt.privacy.eraser.erase(
        CustomerRef.parse(contact_key(SIMULATOR, BLOCKER)), actor=Actor.cli(), source="cli")
    assert erased.counts["contact_blocks"] == 1
    for _ in range(4):  # 72 h more of receipts: what marks a real block
        runs += await _day(rt, fake_clock, receipts=True)
    assert blocker not in _marked(runs)
    async with rt.sessions() as s:
        left = await s.scalar(select(func.count()).select_from(ContactBlock)
                              .where(ContactBlock.conversation_id == blocker))
    assert left == 0
