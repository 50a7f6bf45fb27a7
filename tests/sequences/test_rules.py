"""The rules before each step, on a fake clock: a reply stops (or pauses) the sequence
before the next step, a human owner pauses it, allowed hours hold a step, opt-out stops."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx

from bot.clock import FakeClock
from bot.sequences import SequenceDraft, Step
from bot.wiring.runtime import Runtime
from tests.conftest import ask
from tests.sequences.helpers import enrollment, make_sequence, sends, sent_to

PHONE = "+525533334444"


async def test_a_reply_stops_the_sequence_before_the_next_step(
    rt: Runtime, api: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    sequence_id = await make_sequence(rt, 0, 60, on_reply="stop")
    enrolled = await rt.sequences.enroll_phone(sequence_id, phone=PHONE, name="Ana", by=None)
    assert await sent_to(rt, PHONE) == [("Paso 1, Ana", "sent")]  # no delay: sent at once

    await ask(api, "gracias, lo reviso", phone=PHONE)
    fake_clock.advance(minutes=61)
    result = await rt.sequence_ticker.tick()
    assert result.stopped == 1 and result.queued == 0
    assert await sent_to(rt, PHONE) == [("Paso 1, Ana", "sent")]
    row = await enrollment(rt, enrolled.id)
    assert (row.state, row.stop_reason, row.steps_queued, row.due_at) == (
        "stopped", "replied", 1, None)
    # a later tick finds nothing due: the stopped enrollment is out of the index
    assert (await rt.sequence_ticker.tick()).found == 0


async def test_without_a_reply_every_step_goes_out_once_then_it_completes(
    rt: Runtime, fake_clock: FakeClock
) -> None:
    sequence_id = await make_sequence(rt, 0, 60, 120)
    enrolled = await rt.sequences.enroll_phone(sequence_id, phone=PHONE, name="Ana", by=None)
    fake_clock.advance(minutes=59)
    assert (await rt.sequence_ticker.tick()).found == 0  # step 2 not due yet
    for minutes in (2, 119, 2, 600):
        fake_clock.advance(minutes=minutes)
        await rt.sequence_ticker.tick()
    assert [t for t, _ in await sent_to(rt, PHONE)] == ["Paso 1, Ana", "Paso 2, Ana",
                                                       "Paso 3, Ana"]
    row = await enrollment(rt, enrolled.id)
    assert (row.state, row.steps_queued, row.stop_reason) == ("completed", 3, None)
    assert [s.step for s in await sends(rt, enrolled.id)] == [0, 1, 2]


async def test_pause_on_reply_waits_until_the_customer_is_quiet(
    rt: Runtime, api: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    sequence_id = await make_sequence(rt, 0, 60, on_reply="pause")
    enrolled = await rt.sequences.enroll_phone(sequence_id, phone=PHONE, name="Ana", by=None)
    fake_clock.advance(minutes=50)
    await ask(api, "déjame ver", phone=PHONE)  # 50 minutes in: step 2 waits until 110
    fake_clock.advance(minutes=11)
    result = await rt.sequence_ticker.tick()
    assert result.waiting == 1 and len(await sent_to(rt, PHONE)) == 1
    row = await enrollment(rt, enrolled.id)
    assert row.paused_reason == "replied" and row.state == "active"
    fake_clock.advance(minutes=50)
    await rt.sequence_ticker.tick()
    assert [t for t, _ in await sent_to(rt, PHONE)] == ["Paso 1, Ana", "Paso 2, Ana"]


async def test_a_human_owner_pauses_it_and_the_delay_restarts_at_the_handback(
    rt: Runtime, api: httpx.AsyncClient, fake_clock: FakeClock, headers  # type: ignore[no-untyped-def]
) -> None:
    sequence_id = await make_sequence(rt, 0, 60, on_human="pause")
    enrolled = await rt.sequences.enroll_phone(sequence_id, phone=PHONE, name="Ana", by=None)
    agent = await headers("supervisor")
    conversation = str(enrolled.conversation_id)
    took = await api.post(f"/api/v1/conversations/{conversation}/messages", headers=agent,
                          json={"text": "Hola Ana, soy Luis; te llamo en un rato."})
    assert took.status_code == 200 and took.json()["owner"] == "human"

    fake_clock.advance(minutes=61)
    assert (await rt.sequence_ticker.tick()).waiting == 1
    row = await enrollment(rt, enrolled.id)
    assert (row.state, row.paused_reason, row.steps_queued) == ("active", "human_owner", 1)
    fake_clock.advance(minutes=30)
    await rt.sequence_ticker.tick()
    assert len(await sent_to(rt, PHONE)) == 1  # still the agent's: nothing sent over them

    resolved = await api.post(f"/api/v1/conversations/{conversation}/resolve", headers=agent)
    assert resolved.status_code == 200
    fake_clock.advance(minutes=20)
    await rt.sequence_ticker.tick()
    assert len(await sent_to(rt, PHONE)) == 1  # 20 minutes after the handback: not yet
    fake_clock.advance(minutes=41)
    await rt.sequence_ticker.tick()
    assert [t for t, _ in await sent_to(rt, PHONE)] == ["Paso 1, Ana", "Paso 2, Ana"]


async def test_a_human_owner_stops_it_when_the_admin_chose_stop(
    rt: Runtime, api: httpx.AsyncClient, fake_clock: FakeClock, headers  # type: ignore[no-untyped-def]
) -> None:
    sequence_id = await make_sequence(rt, 0, 60, on_human="stop")
    enrolled = await rt.sequences.enroll_phone(sequence_id, phone=PHONE, name="Ana", by=None)
    agent = await headers("supervisor")
    await api.post(f"/api/v1/conversations/{enrolled.conversation_id}/messages",
                   headers=agent, json={"text": "Te atiendo yo."})
    fake_clock.advance(minutes=61)
    await rt.sequence_ticker.tick()
    row = await enrollment(rt, enrolled.id)
    assert (row.state, row.stop_reason) == ("stopped", "human_owner")


async def test_opting_out_stops_it_at_once_and_withdraws_nothing_sent(
    rt: Runtime, api: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    sequence_id = await make_sequence(rt, 0, 60, on_reply="continue")
    enrolled = await rt.sequences.enroll_phone(sequence_id, phone=PHONE, name="Ana", by=None)
    outcome = await ask(api, "BAJA", phone=PHONE)
    assert outcome["intent"] == "opt_out"
    row = await enrollment(rt, enrolled.id)  # the trigger, in the opt-out's transaction
    assert (row.state, row.stop_reason) == ("stopped", "opted_out")
    fake_clock.advance(minutes=61)
    await rt.sequence_ticker.tick()
    assert await sent_to(rt, PHONE) == [("Paso 1, Ana", "sent")]


async def test_allowed_hours_hold_a_step_until_they_open(
    rt: Runtime, fake_clock: FakeClock
) -> None:
    mx = ZoneInfo("America/Mexico_City")
    monday_night = datetime(2027, 1, 4, 22, 0, tzinfo=mx).astimezone(UTC)
    fake_clock.now = monday_night
    draft = SequenceDraft(name="horario", steps=(
        Step(delay_minutes=0, text="Hola {nombre}", days=(1, 2), start=time(9), end=time(18)),
    ), timezone="America/Mexico_City")
    sequence_id = (await rt.sequences.create(draft, by=None)).id
    enrolled = await rt.sequences.enroll_phone(sequence_id, phone=PHONE, name="Ana", by=None)
    row = await enrollment(rt, enrolled.id)
    assert row.due_at == datetime(2027, 1, 5, 9, 0, tzinfo=mx)  # Tuesday 09:00 local
    assert await sent_to(rt, PHONE) == []
    fake_clock.now = datetime(2027, 1, 5, 8, 59, tzinfo=mx).astimezone(UTC)
    assert (await rt.sequence_ticker.tick()).found == 0
    fake_clock.advance(minutes=1)
    await rt.sequence_ticker.tick()
    assert await sent_to(rt, PHONE) == [("Hola Ana", "sent")]


async def test_a_delay_counts_from_enrollment_when_asked(
    rt: Runtime, fake_clock: FakeClock
) -> None:
    draft = SequenceDraft(name="desde inscripción", steps=(
        Step(delay_minutes=10, text="uno"),
        Step(delay_minutes=60, text="dos", after="enrollment"),
    ))
    sequence_id = (await rt.sequences.create(draft, by=None)).id
    enrolled = await rt.sequences.enroll_phone(sequence_id, phone=PHONE, by=None)
    fake_clock.advance(minutes=30)  # a late tick: step 1 goes at 30, step 2 still at 60
    await rt.sequence_ticker.tick()
    assert (await enrollment(rt, enrolled.id)).due_at == fake_clock.now + timedelta(minutes=30)


async def test_a_refused_step_stops_it_and_one_interrupted_mid_send_is_not_repeated(
    rt: Runtime, fake_clock: FakeClock
) -> None:
    from datetime import timedelta as td

    from sqlalchemy import text

    sequence_id = await make_sequence(rt, 0, 60, 60)
    refused = await rt.sequences.enroll_phone(sequence_id, phone=PHONE, name="Ana", by=None)
    cut = await rt.sequences.enroll_phone(sequence_id, phone="+525533335555", name="Eva",
                                          by=None)
    async with rt.sessions() as s, s.begin():
        # the channel refused one step for good; the other's sender died mid-send
        await s.execute(text(
            "UPDATE messages SET status = 'failed', error = 'recipient not on WhatsApp' "
            "WHERE id = (SELECT message_id FROM sequence_sends WHERE enrollment_id = :id)"),
            {"id": refused.id})
        await s.execute(text(
            "UPDATE messages SET status = 'sending', claimed_at = now() - interval '10 minutes'"
            " WHERE id = (SELECT message_id FROM sequence_sends WHERE enrollment_id = :id)"),
            {"id": cut.id})
    assert await rt.outbox.recover_stuck(older_than=td(seconds=120)) == 0  # not re-sent
    assert [s for _, s in await sent_to(rt, "+525533335555")] == ["failed"]
    fake_clock.advance(minutes=61)
    await rt.sequence_ticker.tick()
    row = await enrollment(rt, refused.id)
    assert (row.state, row.stop_reason) == ("stopped", "send_failed")
    assert [t for t, _ in await sent_to(rt, "+525533335555")] == ["Paso 1, Eva", "Paso 2, Eva"]
    assert (await enrollment(rt, cut.id)).state == "active"


async def test_one_tick_at_a_time(rt: Runtime, fake_clock: FakeClock) -> None:
    from sqlalchemy import text

    sequence_id = await make_sequence(rt, 0, 60)
    await rt.sequences.enroll_phone(sequence_id, phone=PHONE, name="Ana", by=None)
    fake_clock.advance(minutes=61)
    async with rt.sessions() as other, other.begin():  # another worker's tick is running
        await other.execute(text(
            "SELECT pg_advisory_xact_lock(hashtext('atiende.sequences.tick'))"))
        assert (await rt.sequence_ticker.tick()).found == 0
    assert (await rt.sequence_ticker.tick()).found == 1
