"""Enrolling a contact list, and the per-number cap on unsent follow-ups of a paced number."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.sequences import SequenceDraft, SequenceTicker, Step
from bot.settings.sequences import SequencesConfig
from bot.wiring.runtime import Runtime
from handoff.conversations import Message
from tests.conftest import ask
from tests.sequences.helpers import sent_to

CARTERA = (
    b"telefono,nombre,poliza\n"
    b"55 1000 0001,Ana,AX-1\n"
    b"55 1000 0002,Beto,\n"          # no value for {poliza}
    b"55 1000 0003,Carla,AX-3\n"
    b"55 1000 0004,Dora,AX-4\n"      # opts out after the upload
)


async def test_a_contact_list_enrolls_everyone_it_can_and_says_why_not_the_rest(
    rt: Runtime, api: httpx.AsyncClient, headers  # type: ignore[no-untyped-def]
) -> None:
    supervisor = await headers("supervisor")
    cartera = await rt.campaigns.import_list(name="renovaciones", data=CARTERA, created_by=None)
    draft = SequenceDraft(name="renovación", steps=(
        Step(delay_minutes=0, text="Hola {nombre}, tu póliza {poliza} vence pronto."),))
    sequence_id = (await rt.sequences.create(draft, by=None)).id
    await rt.sequences.enroll_phone(sequence_id, phone="+525510000003", name="Carla",
                                    fields={"poliza": "AX-3"}, by=None)
    await ask(api, "BAJA", phone="+525510000004")

    url = f"/api/v1/sequences/{sequence_id}/enrollments/from-list"
    report = await api.post(url, headers=supervisor, json={"list_id": str(cartera.id)})
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["enrolled"] == 1
    assert sorted((s["phone"], s["reason"]) for s in body["skipped"]) == [
        ("+525510000002", "missing_value"), ("+525510000003", "already_enrolled"),
        ("+525510000004", "opted_out")]
    await rt.sequence_ticker.tick()  # a list's first steps go out with the next tick
    assert await sent_to(rt, "+525510000001") == [
        ("Hola Ana, tu póliza AX-1 vence pronto.", "sent")]
    again = await api.post(url, headers=supervisor, json={"list_id": str(cartera.id)})
    assert again.json()["enrolled"] == 0  # uploaded twice: nobody gets it twice
    assert await sent_to(rt, "+525510000001") == [
        ("Hola Ana, tu póliza AX-1 vence pronto.", "sent")]
    missing = await api.post(url, headers=supervisor,
                             json={"list_id": "00000000-0000-0000-0000-000000000000"})
    assert missing.status_code == 404


async def test_a_paced_number_holds_a_few_unsent_follow_ups_and_the_rest_wait(
    rt: Runtime, fake_clock: FakeClock
) -> None:
    account = "5215500000000"
    draft = SequenceDraft(name="pausada", channel="whatsapp", account=account,
                          steps=(Step(delay_minutes=10, text="Hola"),))
    sequence_id = (await rt.sequences.create(draft, by=None)).id
    for i in range(5):
        await rt.sequences.enroll_phone(sequence_id, phone=f"+52552000000{i}", by=None)
    ticker = SequenceTicker(
        sessions=rt.sessions, outbox=rt.outbox, clock=fake_clock,
        config=SequencesConfig(tick_seconds=0, max_queued_per_number=2),
        paced_channels=("whatsapp",),
    )
    fake_clock.advance(minutes=11)
    batch = await ticker.run_batch()  # written, not sent: the number's job would send them
    assert (batch.found, batch.actions["send"], batch.actions["wait"]) == (5, 2, 3)
    async with rt.sessions() as s:
        pending = (await s.execute(select(func.count()).select_from(Message).where(
            Message.author == "sequence", Message.status == "pending"))).scalar_one()
    assert pending == 2
    assert (await ticker.run_batch()).found == 0  # the other three wait a minute
    fake_clock.advance(seconds=61)
    assert (await ticker.run_batch()).actions["wait"] == 3  # still two unsent
