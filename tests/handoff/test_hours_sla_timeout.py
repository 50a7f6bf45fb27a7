"""Business hours on a fixed clock: out-of-office once, SLA pauses, idle timeout to the bot."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.clock import FakeClock
from bot.settings import Settings
from handoff.conversations import Message
from handoff.hours import BusinessHours, InvalidHours
from handoff.tables import Ticket
from tests.conftest import ask
from tests.handoff.conftest import custom_runtime

SPEC = "mon-fri 09:00-18:00; sat 10:00-14:00"
TZ = "America/Mexico_City"  # UTC-6, no DST since 2022


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    """A Mexico City wall-clock time as an aware UTC instant."""
    return datetime(y, mo, d, h + 6, mi, tzinfo=UTC) if h + 6 < 24 else datetime(
        y, mo, d + 1, h + 6 - 24, mi, tzinfo=UTC
    )


def test_business_hours_rules() -> None:
    hours = BusinessHours.parse(SPEC, TZ, ["2026-01-06"])
    assert hours.is_open(local(2026, 1, 9, 17, 59))  # Friday
    assert not hours.is_open(local(2026, 1, 9, 18, 0))
    assert hours.is_open(local(2026, 1, 10, 11))  # Saturday morning
    assert not hours.is_open(local(2026, 1, 10, 15))
    assert not hours.is_open(local(2026, 1, 11, 12))  # Sunday
    assert not hours.is_open(local(2026, 1, 6, 12))  # a holiday Tuesday
    assert hours.next_open(local(2026, 1, 10, 15)) == local(2026, 1, 12, 9)
    assert hours.next_open(local(2026, 1, 5, 20)) == local(2026, 1, 7, 9)  # skips the holiday
    # Fri 17:50 → Mon 09:05: 10 min Friday + 4 h Saturday + 5 min Monday
    assert hours.business_seconds(local(2026, 1, 9, 17, 50), local(2026, 1, 12, 9, 5)) == (
        (10 + 240 + 5) * 60
    )
    always = BusinessHours.parse("", TZ)
    assert always.always_open and always.is_open(local(2026, 1, 11, 3))
    for bad in ("lun-vie 9-18", "mon-fri 18:00-09:00", "xyz 09:00-10:00"):
        with pytest.raises(InvalidHours):
            BusinessHours.parse(bad, TZ)


async def test_out_of_office_once_and_sla_paused_outside_hours(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    clock = FakeClock(local(2026, 1, 10, 20))  # Saturday night
    async with custom_runtime(settings, database_url, redis_url, clock=clock,
                              hours=SPEC, timezone=TZ) as (rt, client, staff):
        phone = "+525544443333"
        first = await ask(client, "necesito un asesor urgente", phone=phone)
        assert first["owner"] == "queued"
        assert len(first["replies"]) == 1  # type: ignore[arg-type]
        notice = str(first["replies"][0])  # type: ignore[index]
        assert "fuera de horario" in notice and "lunes 09:00" in notice
        second = await ask(client, "holaaa??", phone=phone)
        assert second["owner"] == "queued" and second["replies"] == []  # only once

        sup = await staff("supervisor")
        url = f"/api/v1/conversations/{first['conversation_id']}"
        clock.advance(hours=11)  # Sunday morning: still closed, the SLA clock is paused
        sla = (await client.get(url, headers=sup.headers)).json()["ticket"]["first_response"]
        assert sla["paused"] is True and sla["elapsed_seconds"] == 0 and not sla["breached"]

        clock.now = local(2026, 1, 12, 9, 5)  # Monday 09:05
        agent = await staff("agent")
        assert (await client.post(f"{url}/messages", json={"text": "Buen día, lo atiendo"},
                                  headers=agent.headers)).status_code == 200
        async with rt.sessions() as session:
            ticket = (await session.execute(select(Ticket))).scalar_one()
        assert ticket.first_response_seconds == 5 * 60
        assert ticket.out_of_office_sent_at is not None


async def test_in_hours_escalation_gets_the_wait_not_out_of_office(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    clock = FakeClock(local(2026, 1, 12, 11))  # Monday 11:00
    async with custom_runtime(settings, database_url, redis_url, clock=clock,
                              hours=SPEC, timezone=TZ) as (_rt, client, staff):
        agent = await staff("agent")
        await client.post("/api/v1/agents/me/presence", json={"online": True},
                          headers=agent.headers)
        out = await ask(client, "me pasas con un asesor?", phone="+525544440000")
        assert "Tiempo de espera estimado" in str(out["replies"][0])  # type: ignore[index]
        assert "fuera de horario" not in str(out["replies"][0])  # type: ignore[index]
        again = await ask(client, "sigo aqui", phone="+525544440000")
        assert again["replies"] == []


async def test_idle_human_conversation_times_out_back_to_the_bot(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    clock = FakeClock(local(2026, 1, 12, 10))
    async with custom_runtime(settings, database_url, redis_url, clock=clock,
                              idle_timeout_minutes=120) as (rt, client, staff):
        phone = "+525511110000"
        out = await ask(client, "quiero un asesor", phone=phone)
        conversation_id = uuid.UUID(str(out["conversation_id"]))
        agent = await staff("agent")
        url = f"/api/v1/conversations/{conversation_id}"
        await client.post(f"{url}/messages", json={"text": "Hola, dime"}, headers=agent.headers)
        clock.advance(minutes=119)
        assert await rt.handoff.timeout_idle() == 0
        clock.advance(minutes=2)
        assert await rt.handoff.timeout_idle() == 1
        detail = (await client.get(url, headers=agent.headers)).json()
        assert detail["conversation"]["owner"] == "bot"
        async with rt.sessions() as session:
            texts = (await session.execute(
                select(Message.text).where(Message.conversation_id == conversation_id,
                                           Message.author == "system")
            )).scalars().all()
            ticket = (await session.execute(select(Ticket))).scalar_one()
        assert any("no hubo actividad" in (t or "") for t in texts)
        assert ticket.outcome == "timeout"
        back = await ask(client, "hola de nuevo", phone=phone)
        assert back["owner"] == "bot" and back["replies"] and back["escalated"] is False


async def test_the_periodic_job_times_out_idle_conversations(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    """The worker's periodic job (procrastinate) runs the timeout on its own."""
    async with custom_runtime(settings, database_url, redis_url, idle_timeout_minutes=0.02,
                              timeout_check_seconds=1) as (rt, client, staff):
        out = await ask(client, "quiero un asesor", phone="+525511110001")
        agent = await staff("agent")
        url = f"/api/v1/conversations/{out['conversation_id']}"
        assert (await client.post(f"{url}/claim", headers=agent.headers)).status_code == 200
        owner = "human"
        for _ in range(100):
            owner = (await client.get(url, headers=agent.headers)).json()["conversation"]["owner"]
            if owner == "bot":
                break
            await asyncio.sleep(0.2)
        assert owner == "bot"


def test_settings_read_from_the_environment_and_bad_hours_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("ATIENDE_HANDOFF__HOURS", "mon-sat 08:00-20:00")
    monkeypatch.setenv("ATIENDE_HANDOFF__HOLIDAYS", '["2026-12-25"]')
    monkeypatch.setenv("ATIENDE_HANDOFF__ASSIGNMENT", "round_robin")
    loaded = Settings()
    assert loaded.handoff.hours == "mon-sat 08:00-20:00"
    assert loaded.handoff.holidays == ["2026-12-25"] and loaded.handoff.assignment == "round_robin"
    monkeypatch.setenv("ATIENDE_HANDOFF__HOURS", "lunes a viernes")
    with pytest.raises(ValidationError, match="cannot read business hours"):
        Settings()
