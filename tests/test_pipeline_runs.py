"""The worker's batched path: a burst of one conversation's messages, decided in order and
committed together, on real PostgreSQL + Redis (no worker until the burst is stored)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import psycopg
from sqlalchemy import select

from bot.container import Runtime
from bot.db import libpq_url
from bot.messages import InboundMessage, MessageKind
from bot.responder import Decision, Persona, ResponseRequest, RuleResponder
from bot.settings import Settings
from handoff.records import Conversation, Message

PHONE = "+5215577770000"


def _text(i: int, text: str) -> InboundMessage:
    return InboundMessage(
        channel="simulator", account="demo", provider_message_id=f"burst-{i}",
        sender_phone=PHONE, kind=MessageKind.TEXT, text=text,
        received_at=datetime.now(UTC),
    )


async def _wait_processed(runtime: Runtime, ids: list[uuid.UUID], timeout: float = 30) -> None:
    async def done() -> bool:
        async with runtime.sessions() as s:
            left = await s.scalar(
                select(Message.id).where(Message.id.in_(ids), Message.status == "received")
                .limit(1)
            )
        return left is None

    async with asyncio.timeout(timeout):
        while not await done():
            await asyncio.sleep(0.1)


class CountingResponder:
    """The real rule responder, counting calls per message (a port implementation)."""

    def __init__(self) -> None:
        self.inner = RuleResponder(Persona("Atiende", "Seguros Atiende"))
        self.calls: dict[uuid.UUID, int] = {}
        self.histories: list[int] = []

    async def respond(self, request: ResponseRequest) -> Decision:
        self.calls[request.message_id] = self.calls.get(request.message_id, 0) + 1
        self.histories.append(len(request.history))
        return await self.inner.respond(request)


async def test_a_burst_is_answered_once_each_in_order_and_stops_at_the_handoff(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    responder = CountingResponder()
    runtime = await Runtime.create(
        settings, database_url=database_url, redis_url=redis_url, responder=responder
    )
    try:
        texts = [f"hola {i}" if i % 2 else f"gracias {i}" for i in range(10)]
        texts += ["quiero hablar con una persona", "sigues ahí?", "holaaa", "gracias"]
        ids = [(await runtime.ingestor.accept(_text(i, t))).message_id for i, t in enumerate(texts)]
        jobs = await runtime.jobs.counts()
        assert jobs.get("todo") == 1  # one waiting job carries the whole burst
        runtime.start_worker()
        await _wait_processed(runtime, ids)
        async with runtime.sessions() as s:
            replies = (
                await s.execute(
                    select(Message.in_reply_to, Message.author)
                    .where(Message.in_reply_to.in_(ids)).order_by(Message.seq)
                )
            ).all()
            conversation = (await s.execute(select(Conversation))).scalar_one()
            processed = (
                await s.execute(select(Message.status).where(Message.id.in_(ids)))
            ).scalars().all()
        assert set(processed) == {"processed"}
        answered = [r.in_reply_to for r in replies]
        # the first ten in order, one reply each; the human request gets the handoff
        # notice; after it the conversation is queued and the bot is silent
        assert answered[:10] == ids[:10]
        assert answered[10:] == [ids[10]] * (len(answered) - 10)
        assert conversation.owner == "queued"
        # every message decided exactly once (the escalation is not decided twice)
        assert all(responder.calls.get(i) == 1 for i in ids[:11])
        assert ids[11] not in responder.calls
        # each decision saw the earlier turns of the burst (memory inside the run)
        assert responder.histories[:3] == [0, 2, 4]
    finally:
        await runtime.close()


class TakeoverResponder(CountingResponder):
    """An agent takes the conversation while the bot is deciding the third message."""

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self._url = libpq_url(database_url)

    async def respond(self, request: ResponseRequest) -> Decision:
        if len(self.calls) == 2:
            async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as c:
                await c.execute(
                    "UPDATE conversations SET owner = 'human' WHERE id = %s",
                    (request.conversation_id,),
                )
        return await super().respond(request)


async def test_an_agent_taking_over_mid_run_silences_the_whole_run(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    responder = TakeoverResponder(database_url)
    runtime = await Runtime.create(
        settings, database_url=database_url, redis_url=redis_url, responder=responder
    )
    try:
        ids = [
            (await runtime.ingestor.accept(_text(i, f"hola {i}"))).message_id for i in range(5)
        ]
        runtime.start_worker()
        await _wait_processed(runtime, ids)
        async with runtime.sessions() as s:
            bot_replies = (
                await s.execute(
                    select(Message.id).where(
                        Message.in_reply_to.in_(ids), Message.author == "bot"
                    )
                )
            ).all()
            owner = await s.scalar(select(Conversation.owner))
        # decided while the bot owned it, committed after the agent took it: nothing sent
        assert bot_replies == []
        assert owner == "human"
        # the run was decided once (all five, before its commit found the agent) and is
        # not decided again one by one
        assert [responder.calls.get(i) for i in ids] == [1, 1, 1, 1, 1]
    finally:
        await runtime.close()


async def test_the_job_table_is_vacuumed_often(database_url: str) -> None:
    """Dead job rows slow every fetch (replies took seconds at a steady 100/s): the
    migration tunes the job table's autovacuum and the embedded server checks every 5 s."""
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
        options = await (await conn.execute(
            "SELECT reloptions FROM pg_class WHERE relname = 'procrastinate_jobs'"
        )).fetchone()
        naptime = await (await conn.execute("SHOW autovacuum_naptime")).fetchone()
    assert options is not None and "autovacuum_vacuum_threshold=500" in options[0]
    assert "autovacuum_vacuum_scale_factor=0" in options[0]
    assert naptime == ("5s",)
