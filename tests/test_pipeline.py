"""The foundation end to end: simulator → store → ordered jobs → outbox, on real PG + Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

from bot.answering.responder import Decision, Persona, ResponseRequest, RuleResponder
from bot.api import create_app
from bot.clock import FakeClock
from bot.messages import InboundMessage, MessageKind
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.conversations import Contact, Conversation, Message
from tests.conftest import ask, staff_outcome


class RecordingResponder:
    """The real rule responder, remembering what it was asked (a port implementation)."""

    def __init__(self) -> None:
        self.inner = RuleResponder(Persona("Atiende", "Seguros Atiende"))
        self.requests: list[ResponseRequest] = []

    async def respond(self, request: ResponseRequest) -> Decision:
        self.requests.append(request)
        return await self.inner.respond(request)


class ExplodingResponder(RecordingResponder):
    """Raises on the word 'boom' (a responder with a bug), answers everything else."""

    async def respond(self, request: ResponseRequest) -> Decision:
        if "boom" in request.text:
            raise RuntimeError("responder bug")
        return await super().respond(request)


RuntimeMaker = Callable[..., Awaitable[tuple[Runtime, httpx.AsyncClient]]]


@pytest.fixture
async def make_runtime(
    settings: Settings, database_url: str, redis_url: str
) -> AsyncIterator[RuntimeMaker]:
    made: list[tuple[Runtime, httpx.AsyncClient]] = []

    async def make(**kwargs: object) -> tuple[Runtime, httpx.AsyncClient]:
        overrides = {k: v for k, v in kwargs.items() if k not in {"clock", "responder"}}
        rt = await Runtime.create(
            settings.model_copy(update=overrides), database_url=database_url,
            redis_url=redis_url, **{k: v for k, v in kwargs.items() if k in {"clock", "responder"}},  # type: ignore[arg-type]
        )
        rt.start_worker()

        async def factory() -> Runtime:
            return rt

        app = create_app(factory, run_worker=False)
        app.state.runtime = rt
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        made.append((rt, client))
        return rt, client

    yield make
    for rt, client in made:
        await client.aclose()
        await rt.close()


async def replies_for(runtime: Runtime, message_id: str) -> list[str]:
    async with runtime.sessions() as s:
        rows = await s.execute(
            select(Message.text).where(Message.in_reply_to == uuid.UUID(message_id))
        )
        return [r for (r,) in rows]


async def test_human_request_queues_the_conversation(client: httpx.AsyncClient) -> None:
    out = await ask(client, "quiero hablar con un asesor porfa", phone="+5215511111111")
    assert out["intent"] == "human_request"
    assert out["escalated"] is True
    assert out["owner"] == "queued"
    assert "persona" in out["replies"][0]
    # the bot now stays quiet: queued conversations get no bot replies
    again = await ask(client, "hola??", phone="+5215511111111")
    assert again["status"] == "processed"
    assert again["replies"] == [] and again["owner"] == "queued"


async def test_english_greeting_and_thanks(client: httpx.AsyncClient) -> None:
    hi = await ask(client, "hello!! 👋", phone="+5215522222222")
    assert hi["intent"] == "greeting" and "virtual assistant" in hi["replies"][0]
    thanks = await ask(client, "muchas graciaaas", phone="+5215522222222")
    assert thanks["intent"] == "thanks" and "gusto" in thanks["replies"][0]


async def test_a_greeting_that_asks_how_one_is_gets_a_greeting(client: httpx.AsyncClient) -> None:
    """Courtesy is no question for the knowledge base, and no reason for a handoff."""
    hi = await ask(client, "buenos días señorita, ¿cómo está?", phone="+5215522223333")
    assert hi["intent"] == "greeting" and hi["escalated"] is False
    assert hi["owner"] == "bot" and len(hi["replies"]) == 1


async def test_duplicate_delivery_is_stored_once_and_answered_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    first = await ask(client, "hola", phone="+5215533333333", message_id="wamid.ABC123")
    second = await ask(client, "hola", phone="+5215533333333", message_id="wamid.ABC123")
    assert first["message_id"] == second["message_id"]
    assert second["duplicate"] is True
    async with runtime.sessions() as s:
        stored = await s.scalar(
            select(func.count()).where(Message.provider_message_id == "wamid.ABC123")
        )
    assert stored == 1
    assert len(await replies_for(runtime, str(first["message_id"]))) == 1


async def test_concurrent_duplicates_race(client: httpx.AsyncClient, runtime: Runtime) -> None:
    body = {"from": "+5215533334444", "text": "hola", "message_id": "wamid.RACE"}
    results = await asyncio.gather(
        *[client.post("/api/v1/simulator/messages", json=body) for _ in range(10)]
    )
    assert all(r.status_code == 202 for r in results)
    ids = {r.json()["message_id"] for r in results}
    assert len(ids) == 1
    assert sum(not r.json()["duplicate"] for r in results) == 1
    out = await client.get(f"/api/v1/simulator/messages/{ids.pop()}", params={"wait": 10})
    assert len(out.json()["replies"]) == 1


async def test_mexican_521_and_52_are_one_contact(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    a = await ask(client, "hola", phone="+5215544445555")
    b = await ask(client, "hola", phone="+52 55 4444 5555")
    c = await ask(client, "hola", phone="5215544445555@s.whatsapp.net")
    assert a["conversation_id"] == b["conversation_id"] == c["conversation_id"]
    async with runtime.sessions() as s:
        contacts = (await s.execute(select(Contact.phone_e164))).scalars().all()
    # a simulator customer's contact is its own (never a real WhatsApp customer's)
    assert contacts == ["sim:+525544445555"]


async def test_ordering_within_a_conversation_while_others_interleave(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    main_phone = "+5215566660000"
    sent: list[str] = []
    for i in range(20):
        r = await client.post(
            "/api/v1/simulator/messages", json={"from": main_phone, "text": f"mensaje {i}"}
        )
        sent.append(r.json()["message_id"])
        other = await client.post(
            "/api/v1/simulator/messages",
            json={"from": f"+52155666600{10 + i % 5}", "text": f"otro {i}"},
        )
        assert other.status_code == 202
    last = await client.get(f"/api/v1/simulator/messages/{sent[-1]}", params={"wait": 20})
    assert last.json()["status"] == "processed"
    async with runtime.sessions() as s:
        rows = (
            await s.execute(
                select(Message.id, Message.seq, Message.processed_at)
                .where(Message.id.in_([uuid.UUID(m) for m in sent]))
                .order_by(Message.seq)
            )
        ).all()
        replies = (
            await s.execute(
                select(Message.in_reply_to)
                .where(Message.in_reply_to.in_([uuid.UUID(m) for m in sent]))
                .order_by(Message.seq)
            )
        ).scalars().all()
    assert [str(r.id) for r in rows] == sent
    processed = [r.processed_at for r in rows]
    assert all(p is not None for p in processed)
    assert processed == sorted(processed)  # type: ignore[type-var]
    assert [str(r) for r in replies] == sent  # replies written in the same order


async def test_memory_expires_after_24h_of_silence(make_runtime: RuntimeMaker) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 10, tzinfo=UTC))
    responder = RecordingResponder()
    runtime, client = await make_runtime(clock=clock, responder=responder)
    phone = "+5215577770000"
    await ask(client, "hola", phone=phone)
    clock.advance(hours=2)
    await ask(client, "tengo una duda", phone=phone)
    assert [t.text for t in responder.requests[-1].history][:1] == ["hola"]
    assert len(responder.requests[-1].history) == 2  # customer + bot turn
    # Redis lost: memory is rebuilt from PostgreSQL, the record
    await runtime.redis.flushall()
    clock.advance(hours=1)
    await ask(client, "sigues ahí?", phone=phone)
    assert [t.text for t in responder.requests[-1].history][0] == "hola"
    clock.advance(hours=25)
    await ask(client, "hola de nuevo", phone=phone)
    assert responder.requests[-1].history == []  # a fresh context
    clock.advance(minutes=5)
    await ask(client, "otra cosa", phone=phone)
    assert [t.text for t in responder.requests[-1].history][0] == "hola de nuevo"


class SlowResponder(RecordingResponder):
    """Takes a second over 'lento' (a busy worker), answers everything else at once."""

    async def respond(self, request: ResponseRequest) -> Decision:
        if request.text == "lento":
            await asyncio.sleep(1.0)
        return await super().respond(request)


async def test_the_responder_is_told_how_long_a_message_waited(
    make_runtime: RuntimeMaker,
) -> None:
    """Measured by PostgreSQL from when it was accepted: a message queued behind a slow
    one has waited (the knowledge responder then skips its second model)."""
    responder = SlowResponder()
    _, client = await make_runtime(responder=responder)
    phone = "+5215566660000"
    await client.post("/api/v1/simulator/messages", json={"from": phone, "text": "lento"})
    await ask(client, "y otra cosa", phone=phone, wait=20)
    waited = {r.text: r.waited for r in responder.requests}
    assert 0.0 <= waited["lento"] < 0.9
    assert waited["y otra cosa"] >= 0.9


async def test_failing_message_is_retried_then_parked_and_replayable(
    make_runtime: RuntimeMaker,
) -> None:
    runtime, client = await make_runtime(
        responder=ExplodingResponder(), job_max_attempts=2, job_retry_base_seconds=1
    )
    phone = "+5215588880000"
    r = await client.post("/api/v1/simulator/messages", json={"from": phone, "text": "boom"})
    bad_id = r.json()["message_id"]
    ok = await ask(client, "hola", phone=phone, wait=20)
    assert ok["status"] == "processed" and ok["intent"] == "greeting"
    bad = (await client.get(f"/api/v1/simulator/messages/{bad_id}")).json()
    assert bad["status"] == "failed"
    async with runtime.sessions() as s:
        row = (await s.execute(select(Message).where(Message.id == uuid.UUID(bad_id)))).scalar_one()
    assert row.attempts == 2 and "responder bug" in (row.error or "")
    assert runtime.metrics.parked._value.get() == 1  # type: ignore[attr-defined]
    # the operator sees it (`atiende jobs failed`) and puts it back in line (`… replay`)
    from bot.cli.jobs import list_failed, replay

    operator = runtime.settings.model_copy(
        update={"database_url": runtime.database_url, "redis_url": runtime.redis_url}
    )
    listing = await list_failed(operator)
    assert f"message {bad_id} conversation={r.json()['conversation_id']} attempts=2" in listing
    replayed = await replay(operator, job_id=None, message_id=bad_id)
    assert replayed == f"message {bad_id} queued again"
    async with asyncio.timeout(20):  # processed again (the bug is still there): parked again
        while runtime.metrics.parked._value.get() < 2:  # type: ignore[attr-defined]
            await asyncio.sleep(0.1)
    unknown = await replay(operator, job_id=None, message_id=str(uuid.uuid4()))
    assert unknown.endswith("is not parked")


async def test_unknown_message_type_is_stored_and_acknowledged(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    accepted = await runtime.ingestor.accept(
        InboundMessage(
            channel="simulator", account="demo", provider_message_id="wamid.POLL1",
            sender_phone="+525599990000", kind=MessageKind.UNKNOWN,
            received_at=runtime.clock(), raw={"type": "poll", "poll": {"q": "¿sí o no?"}},
        )
    )
    out = (await staff_outcome(client, runtime, accepted.message_id, wait=10)).json()
    assert out["status"] == "processed"
    assert "no puedo leer" in out["replies"][0]
    async with runtime.sessions() as s:
        raw = await s.scalar(select(Message.raw).where(Message.id == accepted.message_id))
    assert raw == {"type": "poll", "poll": {"q": "¿sí o no?"}}


async def test_owner_typed_message_silences_the_bot(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    phone = "+525512340000"
    await ask(client, "hola", phone=phone)
    await runtime.ingestor.accept(
        InboundMessage(
            channel="simulator", account="demo", provider_message_id="owner-1",
            sender_phone=phone, kind=MessageKind.TEXT, text="Hola, soy Laura de la agencia",
            received_at=runtime.clock(), from_owner=True,
        )
    )
    out = await ask(client, "ah hola Laura, gracias", phone=phone)
    assert out["owner"] == "human" and out["replies"] == []
    async with runtime.sessions() as s:
        owner = await s.scalar(
            select(Conversation.owner).where(
                Conversation.id == uuid.UUID(str(out["conversation_id"]))
            )
        )
    assert owner == "human"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"from": "+5215512345678"}, "text"),
        ({"from": "+5215512345678", "text": ""}, "text"),
        ({"from": "+5215512345678", "text": "x" * 5000}, "text"),
        ({"from": "no es un teléfono", "text": "hola"}, "phone"),
        ({"from": "+5215512345678", "text": "hola", "extra": 1}, "extra"),
    ],
)
async def test_bad_requests_get_4xx_with_a_reason(
    client: httpx.AsyncClient, body: dict[str, object], reason: str
) -> None:
    r = await client.post("/api/v1/simulator/messages", json=body)
    assert r.status_code == 422
    assert reason in r.text


async def test_malformed_json_and_unknown_ids(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/simulator/messages",
        content=b'{"from": "+52',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    assert (await client.get(f"/api/v1/simulator/messages/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/api/v1/simulator/messages/not-a-uuid")).status_code == 422


async def test_health_and_metrics(client: httpx.AsyncClient) -> None:
    await ask(client, "hola", phone="+5215500001111")
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["components"] == {"database": "ok", "redis": "ok"}
    metrics = (await client.get("/metrics")).text
    assert 'atiende_messages_in_total{channel="simulator",kind="text"} 1.0' in metrics
    assert "atiende_processing_seconds_bucket" in metrics
    assert 'atiende_queue_depth{status="todo"}' in metrics


async def test_simulator_page_escapes_and_serves(client: httpx.AsyncClient) -> None:
    page = await client.get("/simulator")
    assert page.status_code == 200
    assert "innerHTML" not in page.text and '<script type="module" src=' in page.text
    module = await client.get("/static/js/pages/simulator.js")  # its script: text, never markup
    assert module.status_code == 200
    assert "innerHTML" not in module.text and "textContent" in module.text
