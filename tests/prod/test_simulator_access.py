"""ATIENDE_SIMULATOR: off → 404; on in production → staff only; simulator customers are
contacts of their own; a message's outcome only for the session that sent it, or staff."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.channels.wa_events import WHATSAPP_CHANNEL
from bot.messages import InboundMessage, MessageKind
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.conversations import Contact
from handoff.roles import Role
from knowledge.embeddings import Embedder
from tests.conftest import app_client, ask

PROD = dict(env="production", secret_key="k" * 40, database_url="postgresql://unused",
            redis_url="redis://unused")


@pytest.fixture
async def make(
    tmp_path: Path, database_url: str, redis_url: str, kb_embedder: Embedder
) -> AsyncIterator[Callable[..., Any]]:
    opened: list[tuple[Runtime, Any]] = []

    async def build(**overrides: Any) -> tuple[Runtime, httpx.AsyncClient]:
        settings = Settings(data_dir=tmp_path, log_level="WARNING", stalled_job_seconds=2,
                            reconcile_interval_seconds=0.5, **{"env": "test", **overrides})
        rt = await Runtime.create(settings, database_url=database_url, redis_url=redis_url,
                                  embedder=kb_embedder)
        rt.start_worker()
        cm = app_client(rt)
        opened.append((rt, cm))
        return rt, await cm.__aenter__()

    yield build
    for rt, cm in reversed(opened):
        await cm.__aexit__(None, None, None)
        await rt.close()


async def test_off_answers_404_everywhere(make: Callable[..., Any]) -> None:
    _, client = await make(simulator=False)
    assert (await client.post("/api/v1/simulator/messages",
                              json={"from": "+5215511112222", "text": "hola"})).status_code == 404
    assert (await client.get(f"/api/v1/simulator/messages/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/api/v1/simulator/conversations/+5215511112222")).status_code == 404
    assert (await client.get("/simulator")).status_code == 404


async def test_production_default_is_off(make: Callable[..., Any]) -> None:
    runtime, client = await make(**PROD)
    assert runtime.settings.simulator_enabled is False
    assert (await client.get("/simulator")).status_code == 404


async def test_on_in_production_needs_a_staff_login(make: Callable[..., Any]) -> None:
    runtime, client = await make(**PROD, simulator=True)
    body = {"from": "+5215511112222", "text": "hola"}
    assert (await client.post("/api/v1/simulator/messages", json=body)).status_code == 401
    page = await client.get("/simulator")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    key = await runtime.api_keys.create(name="qa", role=Role.AGENT, created_by="tests")
    client.headers["Authorization"] = f"Bearer {key.key}"
    assert (await ask(client, "hola", phone="+5215511112222"))["replies"]
    assert (await client.get("/simulator")).status_code == 200


async def test_outcomes_only_for_the_sending_session_or_staff(
    make: Callable[..., Any], auth_headers: Any
) -> None:
    runtime, client = await make()
    mine = await ask(client, "hola", phone="+5215511113333")
    other_path = f"/api/v1/simulator/messages/{mine['message_id']}"
    async with app_client(runtime) as stranger:  # another browser: another session
        assert (await stranger.get(other_path)).status_code == 404
        chat = await stranger.get("/api/v1/simulator/conversations/+5215511113333")
        assert chat.status_code == 200 and chat.json() == []
        # a WhatsApp message is never readable through the simulator (but by staff)
        wa = await runtime.ingestor.accept(InboundMessage(
            channel=WHATSAPP_CHANNEL, account="5215500000000", provider_message_id="wa-1",
            sender_phone="+525511113333", kind=MessageKind.TEXT, text="mi póliza 123",
            received_at=runtime.clock()))
        assert (await stranger.get(f"/api/v1/simulator/messages/{wa.message_id}")
                ).status_code == 404
        assert (await client.get(f"/api/v1/simulator/messages/{wa.message_id}")
                ).status_code == 404
        staff = await runtime.api_keys.create(name="sup", role=Role.SUPERVISOR,
                                              created_by="tests")
        as_staff = {"Authorization": f"Bearer {staff.key}"}
        assert (await stranger.get(other_path, headers=as_staff)).status_code == 200
    assert (await client.get(other_path)).json()["replies"]
    assert (await client.get("/api/v1/simulator/conversations/+5215511113333")).json()


async def test_simulator_customers_never_share_a_real_contact(make: Callable[..., Any]) -> None:
    """Anyone can type a real customer's number in the simulator: "BAJA" there opts out a
    simulator contact, not the WhatsApp customer, and the histories stay apart."""
    runtime, client = await make()
    real = await runtime.ingestor.accept(InboundMessage(
        channel=WHATSAPP_CHANNEL, account="5215500000000", provider_message_id="wa-2",
        sender_phone="+525544443333", kind=MessageKind.TEXT, text="hola",
        received_at=runtime.clock()))
    fake = await ask(client, "BAJA", phone="+5215544443333")
    assert fake["conversation_id"] != str(real.conversation_id)
    async with runtime.sessions() as s:
        contacts = {c.phone_e164: c.opted_out for c in (await s.execute(select(Contact))).scalars()}
    assert contacts == {"+525544443333": False, "sim:+525544443333": True}
