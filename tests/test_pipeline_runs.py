"""The worker's batched path: a burst of one conversation's messages, decided in order and
committed together, on real PostgreSQL + Redis (no worker until the burst is stored)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from datetime import UTC, datetime

import psycopg
from sqlalchemy import select

from bot.answering.responder import Decision, Persona, ResponseRequest, RuleResponder
from bot.conversation.inbound_queue import InboundCounts, InboundQueue
from bot.db import AutocommitPool, libpq_url
from bot.messages import InboundMessage, MessageKind
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.conversations import Conversation, Message

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
        waiting = await runtime.inbound.counts()
        assert (waiting.waiting, waiting.running) == (1, 0)  # one row carries the burst
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
        # notice; after it the conversation is queued and the bot is silent (while a
        # person is coming it only sends answers from the knowledge base, and these
        # rule replies cite none)
        assert answered[:10] == ids[:10]
        assert answered[10:] == [ids[10]] * (len(answered) - 10)
        assert conversation.owner == "queued"
        # every message decided exactly once (the escalation is not decided twice)
        assert all(responder.calls.get(i) == 1 for i in ids[:11])
        assert all(responder.calls.get(i, 0) <= 1 for i in ids[11:])
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


async def test_the_embedded_server_keeps_the_vector_indexes_in_its_buffers(
    database_url: str,
) -> None:
    """Every question reads both models' vector indexes: the embedded server's shared
    buffers are a quarter of the memory (128 MB to 1 GB), not the default 128 MB."""
    from bot.infra.embedded import shared_buffers_mb

    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
        row = await (await conn.execute(
            "SELECT setting::bigint * 8 / 1024 FROM pg_settings WHERE name = 'shared_buffers'"
        )).fetchone()
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    assert row == (shared_buffers_mb(),)
    assert shared_buffers_mb() == max(128, min(1024, total // 4))


async def _conversations(database_url: str, n: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
        for k, conversation_id in enumerate(ids):
            contact = uuid.uuid4()
            await conn.execute(
                "INSERT INTO contacts (id, phone_e164) VALUES (%s, %s)",
                (contact, f"+5215588{k:06d}"),
            )
            await conn.execute(
                "INSERT INTO conversations (id, contact_id, channel, account, owner, "
                "context_started_at) VALUES (%s, %s, 'simulator', 'demo', 'bot', now())",
                (conversation_id, contact),
            )
    return ids


async def _stopped(dispatcher: asyncio.Task[None]) -> None:
    """Stop a dispatcher as the worker does (cancel), and wait until it has."""
    dispatcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await dispatcher


async def _work_rows(database_url: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
        cursor = await conn.execute(
            "SELECT conversation_id, attempts, claimed_by IS NULL, last_error, "
            "not_before > now() FROM inbound_work"
        )
        return list(await cursor.fetchall())


async def test_the_dispatcher_claims_waiting_conversations_in_batches_and_retries_failures(
    database_url: str,
) -> None:
    """Under load one batch takes every conversation waiting (up to the batch size);
    each ends on its own outcome: done ones leave the list, the failed one alone waits
    for its retry, with the error and a backoff."""
    fast = AutocommitPool(database_url, max_size=4)
    await fast.open()
    queue = InboundQueue(database_url, fast, retry_base_seconds=30)
    conversations = await _conversations(database_url, 10)
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

    try:
        await queue.enqueue(conversations)
        assert (await queue.counts()).waiting == 10
        dispatcher = asyncio.create_task(
            queue.run(handler, concurrency=1, batch=8, lease_seconds=5)
        )
        async with asyncio.timeout(20):
            await finished.wait()
        await _stopped(dispatcher)
        rows = await _work_rows(database_url)
        counts = await queue.counts()
        retrying = await queue.retrying()
    finally:
        await fast.close()
    assert [len(b) for b in batches] == [8, 2]  # the first batch took eight
    assert sorted(c for b in batches for c in b) == sorted(conversations)  # each once
    # only the failed conversation is left, released, waiting for its retry (backoff)
    assert rows == [(failing, 1, True, "RuntimeError: proveedor caído", True)]
    assert (counts.waiting, counts.running, counts.retrying) == (1, 0, 1)
    assert retrying == [(failing, 1, "RuntimeError: proveedor caído")]


async def test_a_message_stored_during_its_batch_runs_again_and_a_dead_lease_expires(
    database_url: str,
) -> None:
    """Work recorded while its conversation is being processed is not lost (the batch
    sees the version moved and the conversation runs again); a conversation claimed by
    a dispatcher that died is claimed again once its lease expires, not before."""
    fast = AutocommitPool(database_url, max_size=4)
    await fast.open()
    queue = InboundQueue(database_url, fast)
    busy, orphan = await _conversations(database_url, 2)
    calls: list[tuple[float, list[uuid.UUID]]] = []
    finished = asyncio.Event()
    start = asyncio.get_running_loop().time()

    async def handler(ids: list[uuid.UUID]) -> tuple[int, dict[uuid.UUID, Exception]]:
        calls.append((asyncio.get_running_loop().time() - start, ids))
        if len(calls) == 1:
            await queue.enqueue(ids)  # a new message while this batch runs
        if orphan in ids:
            finished.set()
        return len(ids), {}

    try:
        async with fast.connection() as conn:  # claimed by a dead dispatcher, 1.5 s lease
            await conn.execute(
                "INSERT INTO inbound_work (conversation_id, claimed_by, claimed_until) "
                "VALUES (%s, %s, now() + interval '1.5 seconds')", (orphan, uuid.uuid4()),
            )
        await queue.enqueue([busy, orphan])  # the orphan's message: no wake-up, claimed
        dispatcher = asyncio.create_task(
            queue.run(handler, concurrency=2, batch=8, lease_seconds=5, poll_seconds=0.2)
        )
        async with asyncio.timeout(20):
            await finished.wait()
        await _stopped(dispatcher)
        rows = await _work_rows(database_url)
    finally:
        await fast.close()
    assert [ids for _, ids in calls] == [[busy], [busy], [orphan]]
    assert calls[1][0] < 1.0  # at once, not at the next poll or lease
    assert calls[2][0] >= 1.3  # the dead lease was respected
    assert rows == []


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
        # drained together: fewer batches ran than there were conversations waiting
        registry = runtime.metrics.registry
        batches = registry.get_sample_value("atiende_worker_batch_conversations_count")
        drained = registry.get_sample_value("atiende_worker_batch_conversations_sum")
        assert batches is not None and drained is not None
        assert drained >= 8 and batches < drained
    finally:
        await runtime.close()



async def test_work_stored_while_batches_run_and_end_is_never_left_behind(
    database_url: str,
) -> None:
    """Two workers' dispatchers share the list while messages keep arriving for
    conversations being processed and released (the release races the version bump):
    a conversation is never in two batches at once, every conversation runs again after
    its last message, and nothing stays claimed (a lost release would wait for the
    lease)."""
    fast = AutocommitPool(database_url, max_size=8)
    await fast.open()
    queue = InboundQueue(database_url, fast)
    conversations = await _conversations(database_url, 12)
    loop = asyncio.get_running_loop()
    last_run: dict[uuid.UUID, float] = {}
    last_stored: dict[uuid.UUID, float] = {}
    running: set[uuid.UUID] = set()
    overlaps: list[uuid.UUID] = []

    async def handler(ids: list[uuid.UUID]) -> tuple[int, dict[uuid.UUID, Exception]]:
        began = loop.time()
        overlaps.extend(cid for cid in ids if cid in running)
        running.update(ids)
        await asyncio.sleep(0.003)
        running.difference_update(ids)
        for cid in ids:
            last_run[cid] = began
        return len(ids), {}

    dispatchers = [
        asyncio.create_task(
            queue.run(handler, concurrency=2, batch=4, lease_seconds=60, poll_seconds=5)
        )
        for _ in range(2)
    ]
    try:
        for k in range(600):
            cid = conversations[k % len(conversations)]
            await queue.enqueue([cid])
            last_stored[cid] = loop.time()
        async with asyncio.timeout(10):  # far below the lease and the poll
            idle = InboundCounts(0, 0, 0)
            while await queue.counts() != idle or len(last_run) < len(conversations):
                await asyncio.sleep(0.05)
    finally:
        for dispatcher in dispatchers:
            dispatcher.cancel()
        await asyncio.gather(*dispatchers, return_exceptions=True)
        await fast.close()
    assert overlaps == []
    assert all(last_run[cid] > last_stored[cid] for cid in conversations)


async def test_a_failing_batch_is_retried_and_a_stopped_one_is_released_at_once(
    database_url: str,
) -> None:
    """A batch that raises as a whole: each of its conversations waits for a retry with
    the error. A worker stopped while a batch runs gives its conversations back at once
    (not after the lease), with no attempt counted."""
    fast = AutocommitPool(database_url, max_size=4)
    await fast.open()
    queue = InboundQueue(database_url, fast, retry_base_seconds=30)
    broken, slow = await _conversations(database_url, 2)
    started = asyncio.Event()

    async def handler(ids: list[uuid.UUID]) -> tuple[int, dict[uuid.UUID, Exception]]:
        if broken in ids:
            raise ConnectionError("se cayó la base")
        started.set()
        await asyncio.sleep(3600)  # a model that never answers
        return 0, {}

    try:
        await queue.enqueue([broken])
        dispatcher = asyncio.create_task(queue.run(
            handler, concurrency=2, batch=8, lease_seconds=60, shutdown_seconds=0.2
        ))
        async with asyncio.timeout(10):
            while (await queue.counts()).retrying == 0:
                await asyncio.sleep(0.05)
            await queue.enqueue([slow])
            await started.wait()
        assert (await queue.counts()).running == 1
        await _stopped(dispatcher)
        rows = {row[0]: row[1:] for row in await _work_rows(database_url)}
        counts = await queue.counts()
    finally:
        await fast.close()
    assert rows[broken] == (1, True, "ConnectionError: se cayó la base", True)
    assert rows[slow] == (0, True, None, False)  # released, claimable now
    assert (counts.waiting, counts.running, counts.retrying) == (2, 0, 1)


def test_the_upgrade_moves_waiting_inbound_jobs_to_the_work_list(pg_admin_url: str) -> None:
    """An installation upgraded with messages waiting: their procrastinate jobs (waiting,
    running when it stopped, or failed) become work-list rows; other jobs stay."""
    from alembic import command
    from alembic.config import Config

    from bot.db import REPO_ROOT

    name = f"u_{uuid.uuid4().hex[:12]}"
    host = pg_admin_url.split("host=", 1)[1]
    url = f"postgresql://postgres@/{name}?host={host}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        config = Config(str(REPO_ROOT / "alembic.ini"))
        config.attributes["url"] = url
        command.upgrade(config, "0003_core")
        waiting, failed = uuid.uuid4(), uuid.uuid4()
        with psycopg.connect(url, autocommit=True) as conn:
            for k, conversation_id in enumerate((waiting, failed)):
                contact = uuid.uuid4()
                conn.execute(
                    "INSERT INTO contacts (id, phone_e164) VALUES (%s, %s)",
                    (contact, f"+52155999900{k}"),
                )
                conn.execute(
                    "INSERT INTO conversations (id, contact_id, channel, account, owner, "
                    "context_started_at) VALUES (%s, %s, 'simulator', 'demo', 'bot', now())",
                    (conversation_id, contact),
                )
            for conversation_id, status in ((waiting, "todo"), (waiting, "doing"),
                                            (failed, "failed")):
                conn.execute(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status)"
                    " VALUES ('inbound', 'atiende.process_conversation', %s, %s, %s)",
                    (f"conv:{conversation_id}",
                     psycopg.types.json.Jsonb({"conversation_id": str(conversation_id)}),
                     status),
                )
            conn.execute(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, args) VALUES "
                "('outbound', 'atiende.send_number', '{\"channel\": \"whatsapp\"}')"
            )
        command.upgrade(config, "heads")
        with psycopg.connect(url, autocommit=True) as conn:
            work = conn.execute(
                "SELECT conversation_id, claimed_by FROM inbound_work ORDER BY conversation_id"
            ).fetchall()
            jobs = conn.execute("SELECT task_name FROM procrastinate_jobs").fetchall()
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert work == sorted([(waiting, None), (failed, None)])
    assert jobs == [("atiende.send_number",)]
