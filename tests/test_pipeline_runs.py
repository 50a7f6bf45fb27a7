"""The worker's batched path: a burst of one conversation's messages, decided in order and
committed together, on real PostgreSQL + Redis (no worker until the burst is stored)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

import psycopg
from sqlalchemy import select

from bot.container import Runtime
from bot.db import libpq_url
from bot.jobs import JobQueue
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


async def test_a_job_takes_the_waiting_conversations_and_ends_each_on_its_own_outcome(
    database_url: str,
) -> None:
    """Under load one job drains every conversation waiting (up to the batch size): the
    taken jobs finish with their conversation, and a failed conversation's job alone is
    retried (the others are not run again)."""
    queue = JobQueue(database_url, max_attempts=3, retry_base_seconds=1)
    conversations = [uuid.uuid4() for _ in range(10)]
    failing = conversations[3]
    batches: list[list[uuid.UUID]] = []
    finished = asyncio.Event()

    async def handler(ids: list[uuid.UUID]) -> tuple[int, dict[uuid.UUID, Exception]]:
        batches.append(ids)
        if sum(len(b) for b in batches) >= len(conversations):
            finished.set()
        failures: dict[uuid.UUID, Exception] = (
            {failing: RuntimeError("proveedor caído")} if failing in ids else {}
        )
        return len(ids), failures

    queue.register(handler, batch=8)
    await queue.open()
    try:
        for conversation_id in conversations:
            await queue.defer_process(conversation_id, connection=None)
        worker = asyncio.create_task(queue.run_worker(concurrency=1))
        async with asyncio.timeout(20):
            await finished.wait()
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        rows = await queue._app.connector.execute_query_all_async(
            "SELECT args->>'conversation_id' AS c, status::text AS s, attempts "
            "FROM procrastinate_jobs WHERE task_name = 'atiende.process_conversation'"
        )
    finally:
        await queue.close()
    assert [len(b) for b in batches[:2]] == [8, 2]  # the first job took seven more
    assert sorted(c for b in batches for c in b) == sorted(conversations)  # each once
    # only the failed conversation's job is left, waiting for its retry
    assert [(uuid.UUID(r["c"]), r["s"], r["attempts"]) for r in rows] == [(failing, "todo", 1)]


async def test_conversations_drained_together_stay_in_order_and_apart(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    """Eight conversations stored before the worker starts are drained together: each
    message answered once and in its conversation's order, each decision with its own
    conversation's history only; one asks for a person and stops there."""
    responder = CountingResponder()
    runtime = await Runtime.create(
        settings.model_copy(update={"worker_concurrency": 1}), database_url=database_url,
        redis_url=redis_url, responder=responder,
    )
    try:
        ids: dict[str, list[uuid.UUID]] = {}
        texts = ["hola", "gracias!!", "buenas tardes", "thanks"]
        for c in range(8):
            phone = f"+52155777701{c:02d}"
            said = list(texts)
            if c == 5:
                said[1] = "quiero hablar con un agente porfa"
            for i, text in enumerate(said):
                message = InboundMessage(
                    channel="simulator", account="demo", provider_message_id=f"m-{c}-{i}",
                    sender_phone=phone, kind=MessageKind.TEXT, text=text,
                    received_at=datetime.now(UTC),
                )
                ids.setdefault(phone, []).append(
                    (await runtime.ingestor.accept(message)).message_id
                )
        runtime.start_worker()
        every = [i for group in ids.values() for i in group]
        await _wait_processed(runtime, every)
        async with runtime.sessions() as s:
            replies = (
                await s.execute(
                    select(Message.in_reply_to).where(Message.in_reply_to.in_(every))
                    .order_by(Message.seq)
                )
            ).scalars().all()
            owners = dict(
                (await s.execute(select(Conversation.id, Conversation.owner))).all()
            )
        for c, (phone, group) in enumerate(ids.items()):
            answered = [r for r in replies if r in group]
            if c == 5:
                assert answered == [group[0], group[1]], phone  # the handoff notice, then quiet
            else:
                assert answered == group, phone  # once each, in order
        assert sorted(owners.values()).count("queued") == 1
        assert all(responder.calls.get(i) == 1 for i in every if i not in ids[list(ids)[5]][2:])
        # a conversation's decisions saw only its own earlier turns
        assert max(responder.histories) <= 2 * (len(texts) - 1)
        # drained together: fewer jobs ran than there were conversations waiting
        registry = runtime.metrics.registry
        batches = registry.get_sample_value("atiende_worker_batch_conversations_count")
        drained = registry.get_sample_value("atiende_worker_batch_conversations_sum")
        assert batches is not None and drained is not None
        assert drained >= 8 and batches < drained
    finally:
        await runtime.close()

