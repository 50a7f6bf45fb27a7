"""Bad input: clear errors (or a defined outcome), nothing sent twice, nothing lost."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from bot.clock import FakeClock
from bot.wiring.runtime import Runtime
from handoff.conversations import Message
from tests.conftest import ask
from tests.sequences.helpers import enrollment, make_sequence, sent_to

ONE_STEP = [{"delay_minutes": 0, "text": "Hola {nombre}"}]


async def _create(api: httpx.AsyncClient, admin: dict[str, str], **body: object) -> httpx.Response:
    payload = {"name": f"s-{uuid.uuid4().hex[:6]}", "steps": ONE_STEP, **body}
    return await api.post("/api/v1/sequences", headers=admin, json=payload)


def _msg(response: httpx.Response) -> str:
    detail = response.json()["detail"]
    return detail if isinstance(detail, str) else " ".join(d["msg"] for d in detail)


async def test_definitions_that_cannot_work_are_refused_with_the_reason(
    api: httpx.AsyncClient, headers  # type: ignore[no-untyped-def]
) -> None:
    admin = await headers("admin")
    no_steps = await _create(api, admin, steps=[])
    assert no_steps.status_code == 422 and "at least 1" in _msg(no_steps)
    together = await _create(api, admin, steps=[{"delay_minutes": 0, "text": "uno"},
                                                {"delay_minutes": 0, "text": "dos"}])
    assert together.status_code == 422 and "step 2" in _msg(together)
    assert "at least 1 minute" in _msg(together)
    for years in (10 * 366 * 24 * 60, 10**18):
        far = await _create(api, admin, steps=[{"delay_minutes": years, "text": "x"}])
        assert far.status_code == 422 and "less than or equal" in _msg(far)
    negative = await _create(api, admin, steps=[{"delay_minutes": -5, "text": "x"}])
    assert negative.status_code == 422
    empty = await _create(api, admin, steps=[{"delay_minutes": 5, "text": "   "}])
    assert empty.status_code == 422 and "empty" in _msg(empty)
    hours = await _create(api, admin, steps=[{"delay_minutes": 5, "text": "x",
                                              "start": "18:00", "end": "09:00"}])
    assert hours.status_code == 422 and "start must be before" in _msg(hours)
    day = await _create(api, admin, steps=[{"delay_minutes": 5, "text": "x", "days": [7]}])
    assert day.status_code == 422
    zone = await _create(api, admin, timezone="Mars/Olympus")
    assert zone.status_code == 422 and "time zone" in _msg(zone)
    order = await _create(api, admin, steps=[
        {"delay_minutes": 60, "text": "x"},
        {"delay_minutes": 30, "text": "y", "after": "enrollment"}])
    assert order.status_code == 422 and "not after the previous step" in _msg(order)
    custom = await _create(api, admin, auto_intent="product",
                           steps=[{"delay_minutes": 5, "text": "Tu saldo es {saldo}"}])
    assert custom.status_code == 422 and "saldo" in _msg(custom)
    unknown = await _create(api, admin, colour="red")
    assert unknown.status_code == 422
    first = await _create(api, admin, name="Renovaciones")
    assert first.status_code == 201
    again = await _create(api, admin, name="Renovaciones")
    assert again.status_code == 409 and again.json()["code"] == "name_taken"
    # a first step of 0 minutes is fine: it goes out when the contact is enrolled
    assert (await _create(api, admin)).status_code == 201


async def test_enrollments_refused_or_defined(
    rt: Runtime, api: httpx.AsyncClient, headers  # type: ignore[no-untyped-def]
) -> None:
    admin = await headers("admin")
    sequence = (await _create(api, admin, steps=[
        {"delay_minutes": 0, "text": "Hola {nombre}, tu póliza {poliza} vence pronto"}])).json()
    url = f"/api/v1/sequences/{sequence['id']}/enrollments"

    invalid = await api.post(url, headers=admin, json={"phone": "no es un número"})
    assert invalid.status_code == 422 and "invalid phone" in _msg(invalid)
    missing = await api.post(url, headers=admin, json={"phone": "5512340000", "name": "Ana"})
    assert missing.status_code == 422 and "{poliza}" in _msg(missing)
    unknown_seq = await api.post(f"/api/v1/sequences/{uuid.uuid4()}/enrollments",
                                 headers=admin, json={"phone": "5512340000"})
    assert unknown_seq.status_code == 404
    assert (await api.post("/api/v1/sequences/nope/enrollments", headers=admin,
                           json={"phone": "5512340000"})).status_code == 422

    # a number never seen before: a defined outcome, it becomes a contact and is enrolled
    new = await api.post(url, headers=admin, json={
        "phone": "5512340000", "name": "Ana", "fields": {"poliza": "AX-1"}})
    assert new.status_code == 201 and new.json()["new_contact"] is True
    twice = await api.post(url, headers=admin, json={
        "phone": "+52 55 1234 0000", "name": "Ana", "fields": {"poliza": "AX-1"}})
    assert twice.status_code == 409 and twice.json()["code"] == "already_enrolled"
    assert twice.json()["enrollment_id"] == new.json()["id"]
    assert "again=true" in twice.json()["detail"]  # it completed: restart on purpose only
    assert await sent_to(rt, "+525512340000") == [
        ("Hola Ana, tu póliza AX-1 vence pronto", "sent")]  # once, not twice

    await ask(api, "ya no me manden mensajes", phone="+525599990000")
    opted = await api.post(url, headers=admin, json={
        "phone": "5599990000", "name": "Luis", "fields": {"poliza": "B-2"}})
    assert opted.status_code == 409 and opted.json()["code"] == "opted_out"
    assert await sent_to(rt, "+525599990000") == []
    rows = (await api.get(url, headers=admin)).json()
    assert [(r["phone"], r["state"], r["steps_sent"]) for r in rows] == [
        ("+525512340000", "completed", 1)]


async def test_deleting_a_sequence_in_use_needs_stop_active_and_withdraws_the_unsent_step(
    rt: Runtime, api: httpx.AsyncClient, fake_clock: FakeClock, headers  # type: ignore[no-untyped-def]
) -> None:
    admin = await headers("admin")
    sequence_id = await make_sequence(rt, 0, 60, 60)
    enrolled = await rt.sequences.enroll_phone(sequence_id, phone="+525512341111", name="Ana",
                                               by=None)
    fake_clock.advance(minutes=61)
    batch = await rt.sequence_ticker.run_batch()  # step 2 written, not sent yet
    assert batch.found == 1
    assert [s for _, s in await sent_to(rt, "+525512341111")] == ["sent", "pending"]

    refused = await api.delete(f"/api/v1/sequences/{sequence_id}", headers=admin)
    assert refused.status_code == 409 and refused.json()["active"] == 1
    assert (await enrollment(rt, enrolled.id)).state == "active"
    deleted = await api.delete(f"/api/v1/sequences/{sequence_id}?stop_active=true",
                               headers=admin)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    row = await enrollment(rt, enrolled.id)
    assert (row.state, row.stop_reason, row.steps_queued) == ("stopped", "sequence_deleted", 2)
    [listed] = (await api.get(f"/api/v1/sequences/{sequence_id}/enrollments",
                              headers=admin)).json()
    assert (listed["state"], listed["steps_sent"], listed["stop_reason"]) == (
        "stopped", 1, "sequence_deleted")  # the withdrawn step was never sent
    assert [s for _, s in await sent_to(rt, "+525512341111")] == ["sent", "cancelled"]
    await rt.outbox.send_pending()
    assert [s for _, s in await sent_to(rt, "+525512341111")] == ["sent", "cancelled"]
    # history and figures are kept; the sequence takes no one new
    figures = (await api.get(f"/api/v1/sequences/{sequence_id}", headers=admin)).json()
    assert figures["analytics"][0]["sent"] == 1 and figures["analytics"][1]["cancelled"] == 1
    late = await api.post(f"/api/v1/sequences/{sequence_id}/enrollments", headers=admin,
                          json={"phone": "5512342222", "name": "Luis"})
    assert late.status_code == 404
    gone = await api.delete(f"/api/v1/sequences/{sequence_id}", headers=admin)
    assert gone.status_code == 404
    async with rt.sessions() as s:
        assert (await s.execute(select(Message.id).where(Message.author == "sequence"))).all()


async def test_agents_only_reach_conversations_they_can_see(
    rt: Runtime, api: httpx.AsyncClient, headers  # type: ignore[no-untyped-def]
) -> None:
    sequence_id = await make_sequence(rt, 60)
    enrolled = await rt.sequences.enroll_phone(sequence_id, phone="+525512343333", name="Ana",
                                               by=None)
    agent = await headers("agent")
    # no ticket routed it to the agent's team: another team's customer
    seen = await api.get(f"/api/v1/conversations/{enrolled.conversation_id}/sequences",
                         headers=agent)
    assert seen.status_code == 403
    stop = await api.post(f"/api/v1/sequence-enrollments/{enrolled.id}/stop", headers=agent)
    assert stop.status_code == 403
    assert (await enrollment(rt, enrolled.id)).state == "active"
    supervisor = await headers("supervisor")
    stopped = await api.post(f"/api/v1/sequence-enrollments/{enrolled.id}/stop",
                             headers=supervisor)
    assert stopped.status_code == 200 and stopped.json()["stop_reason"] == "stopped_by_staff"
    again = await api.post(f"/api/v1/sequence-enrollments/{enrolled.id}/stop",
                           headers=supervisor)
    assert again.status_code == 409
    enrolled_list = await api.post(f"/api/v1/sequences/{sequence_id}/enrollments",
                                   headers=agent, json={"phone": "5512344444"})
    assert enrolled_list.status_code == 403
