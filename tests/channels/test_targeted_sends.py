"""A neonize number sends only from the node that holds its lease: two node runtimes on
the same PostgreSQL and Redis, one number, a takeover; nothing lost, nothing sent twice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from neonize.proto import Neonize_pb2 as pb
from sqlalchemy import select, text

from bot.channels.numbers import NumberRecord
from bot.channels.supervisor import Session
from bot.infra.jobs import PARKED_SEND_QUEUE, SEND_TASK, node_send_queue
from bot.settings import Settings
from bot.settings.channels import ChannelsConfig, NeonizeConfig, PacingConfig
from bot.wiring.runtime import Runtime
from handoff.conversations import Message
from tests.channels.neonize_fakes import (
    BUSINESS,
    Sessions,
    client_of,
    feed,
    linked,
    message_event,
    number_state,
    until,
)
from tests.channels.neonize_fakes import text as wa_text
from tests.channels.test_neonize import (
    OTHER,
    _rows,
    neonize_loop,  # noqa: F401  (autouse fixture: neonize's handler loop)
)


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        env="test", data_dir=tmp_path, stalled_job_seconds=2, reconcile_interval_seconds=0.5,
        job_retry_base_seconds=1, worker_concurrency=4, log_level="WARNING",
        channels=ChannelsConfig(
            pacing=PacingConfig(messages_per_minute=600, burst=10, jitter_seconds=0,
                                typing_min_seconds=0.02, typing_max_seconds=0.02),
            neonize=NeonizeConfig(poll_seconds=0.1, lease_seconds=2, restart_cap=2,
                                  backoff_initial_seconds=0.05, backoff_max_seconds=0.3,
                                  qr_timeout_seconds=5.0),
        ),
    )


class NodeSessions(Sessions):
    """Each node's fake clients number their message ids apart (real ids are unique)."""

    def __init__(self, first_id: int) -> None:
        super().__init__()
        self._next = first_id

    def __call__(self, record: NumberRecord) -> Session:
        session = super().__call__(record)
        client_of(self.made[-1]).counter = self._next
        self._next += 1000
        return session


@pytest.fixture
async def two_nodes(
    tmp_path: Path, database_url: str, redis_url: str
) -> AsyncIterator[tuple[Runtime, Sessions, Runtime, Sessions]]:
    made: list[Runtime] = []
    pairs: list[tuple[Runtime, Sessions]] = []
    for first_id, name in enumerate(("a", "b")):
        sessions = NodeSessions(first_id * 100_000)
        rt = await Runtime.create(_settings(tmp_path / name), database_url=database_url,
                                  redis_url=redis_url, whatsapp_sessions=sessions)
        made.append(rt)
        pairs.append((rt, sessions))
    yield pairs[0][0], pairs[0][1], pairs[1][0], pairs[1][1]
    for rt in made:
        await rt.close()


def _sent_texts(sessions: Sessions, account: str = BUSINESS) -> list[str]:
    return [c[1][1] for s in sessions.made if s.account == account
            for c in client_of(s).calls if c[0] == "send_message"]


async def _queue_rows(rt: Runtime, conversation_id: uuid.UUID, *texts: str) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in texts]
    async with rt.sessions() as s, s.begin():
        for mid, body in zip(ids, texts, strict=True):
            s.add(Message(id=mid, conversation_id=conversation_id, direction="out",
                          author="agent", kind="text", channel="whatsapp", status="pending",
                          text=body))
    return ids


async def _send_job_queues(rt: Runtime) -> list[str]:
    async with rt.sessions() as s:
        return list((await s.execute(text(
            "SELECT queue_name FROM procrastinate_jobs WHERE task_name = :t "
            "AND status = 'todo'"), {"t": SEND_TASK})).scalars())


async def test_sends_follow_the_lease_holder_through_a_takeover(
    two_nodes: tuple[Runtime, Sessions, Runtime, Sessions],
) -> None:
    rt_a, sessions_a, rt_b, sessions_b = two_nodes
    rt_a.start_worker()
    session_a = await linked(rt_a, sessions_a)  # node A holds the number
    rt_b.start_worker()  # node B: its worker runs, its supervisor stands by
    await until(lambda: _standby(rt_b))
    assert not any(s.account == BUSINESS for s in sessions_b.made)

    feed(session_a.client, message_event("3EB0HOLA", wa_text("hola, buenas tardes")))

    async def answered() -> bool:
        return [r.status for r in await _rows(rt_a, direction="out")] == ["sent"]

    await until(answered)
    conversation_id = (await _rows(rt_a, direction="in"))[0].conversation_id

    # B's outbox schedules the number's sends: they land on A's queue and go out from A
    await _queue_rows(rt_b, conversation_id, "uno", "dos", "tres")
    await rt_b.outbox.send_pending(conversation_id)

    async def all_sent() -> bool:
        return all(r.status == "sent" for r in await _rows(rt_a, direction="out"))

    await until(all_sent)
    assert _sent_texts(sessions_a)[-3:] == ["uno", "dos", "tres"]

    # a send job that ends up on B anyway (routed just before the lease moved) touches
    # no row there and is passed on to the holder
    await _queue_rows(rt_b, conversation_id, "cuatro")
    assert rt_b.whatsapp.targeting is not None
    guarded = rt_b.whatsapp.targeting.guard(rt_b.outbox.drain_number)
    assert await guarded("whatsapp", BUSINESS) == 0
    await until(all_sent)
    assert _sent_texts(sessions_a)[-1] == "cuatro"
    assert _sent_texts(sessions_b) == []

    # node A goes away; rows queued meanwhile wait (parked or on B's queue), not lost
    await rt_a.stop_worker()
    sends_by_a = len(_sent_texts(sessions_a))
    later = await _queue_rows(rt_b, conversation_id, "cinco", "seis")
    await rt_b.outbox.send_pending(conversation_id)
    assert set(await _send_job_queues(rt_b)) <= {PARKED_SEND_QUEUE,
                                                 node_send_queue(rt_b.whatsapp.node_id)}

    async def b_started() -> bool:
        return any(s.account == BUSINESS for s in sessions_b.made)

    await until(b_started)
    session_b = sessions_b.latest()
    feed(session_b.client, pb.Connected(status=True))  # resumed from the stored session

    async def b_sent() -> bool:
        rows = [r for r in await _rows(rt_b, direction="out") if r.id in later]
        return all(r.status == "sent" for r in rows)

    await until(b_sent)
    assert _sent_texts(sessions_b) == ["cinco", "seis"]
    assert len(_sent_texts(sessions_a)) == sends_by_a  # A sent nothing after it left
    record = await number_state(rt_b)
    assert record.owner_node == rt_b.whatsapp.node_id
    # every row went out exactly once
    out = await _rows(rt_b, direction="out")
    assert [r.status for r in out] == ["sent"] * 7
    assert len({r.provider_message_id for r in out}) == 7
    assert sorted(_sent_texts(sessions_a) + _sent_texts(sessions_b)) == sorted(
        [out[0].text or "", "uno", "dos", "tres", "cuatro", "cinco", "seis"])


async def _standby(rt: Runtime) -> bool:
    record = await rt.whatsapp.book.get(BUSINESS)
    return record is not None and record.owner_node is not None


async def test_other_numbers_are_unaffected_by_a_missing_holder(
    two_nodes: tuple[Runtime, Sessions, Runtime, Sessions],
) -> None:
    """One number held by A, another by nobody: the held one sends, the other waits parked
    (scheduled from node B) and is sent once a node links it."""
    rt_a, sessions_a, rt_b, _ = two_nodes
    rt_a.start_worker()
    session_a = await linked(rt_a, sessions_a)
    feed(session_a.client, message_event("3EB0X1", wa_text("qué tal")))

    async def answered() -> bool:
        return [r.status for r in await _rows(rt_a, direction="out")] == ["sent"]

    await until(answered)
    conversation_id = (await _rows(rt_a, direction="in"))[0].conversation_id
    # a conversation on a number nobody holds yet
    async with rt_b.sessions() as s, s.begin():
        await s.execute(text(
            "INSERT INTO conversations (id, contact_id, channel, account, owner) "
            "SELECT :id, contact_id, channel, :acct, owner FROM conversations WHERE id = :c"),
            {"id": (other := uuid.uuid4()), "acct": OTHER, "c": conversation_id})
    waiting = await _queue_rows(rt_b, other, "para el otro número")
    await _queue_rows(rt_b, conversation_id, "sigue")
    await rt_b.outbox.send_pending()

    async def held_sent() -> bool:
        return _sent_texts(sessions_a)[-1:] == ["sigue"]

    await until(held_sent)
    assert PARKED_SEND_QUEUE in await _send_job_queues(rt_a)
    async with rt_a.sessions() as s:
        status = (await s.execute(select(Message.status).where(Message.id == waiting[0]))
                  ).scalar_one()
    assert status == "pending"
    await linked(rt_a, sessions_a, OTHER)  # the other number is linked: A adopts its job

    async def other_sent() -> bool:
        async with rt_a.sessions() as s:
            return (await s.execute(select(Message.status).where(Message.id == waiting[0]))
                    ).scalar_one() == "sent"

    await until(other_sent)
    assert _sent_texts(sessions_a, OTHER) == ["para el otro número"]


async def test_a_send_job_stalled_on_a_dead_node_goes_to_the_new_holder(
    two_nodes: tuple[Runtime, Sessions, Runtime, Sessions],
) -> None:
    """Node A dies in the middle of a send job: the job (and its per-number lock) is
    recovered and the number's messages go out from B, once each."""
    rt_a, sessions_a, rt_b, sessions_b = two_nodes
    rt_a.start_worker()
    session_a = await linked(rt_a, sessions_a)
    feed(session_a.client, message_event("3EB0Z", wa_text("buenas")))

    async def answered() -> bool:
        return [r.status for r in await _rows(rt_a, direction="out")] == ["sent"]

    await until(answered)
    conversation_id = (await _rows(rt_a, direction="in"))[0].conversation_id
    await rt_a.stop_worker()
    # what A's crash leaves behind: its send job still "doing" on A's queue, no worker
    key = f"send:whatsapp:{BUSINESS}"
    async with rt_a.sessions() as s, s.begin():
        await s.execute(text(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, queueing_lock, args, "
            "status) VALUES (:q, :t, :k, :k, CAST(:a AS jsonb), 'doing')"),
            {"q": node_send_queue(rt_a.whatsapp.node_id), "t": SEND_TASK, "k": key,
             "a": f'{{"channel": "whatsapp", "account": "{BUSINESS}"}}'})
    later = await _queue_rows(rt_a, conversation_id, "siete", "ocho")
    await rt_b.outbox.send_pending(conversation_id)  # a waiting job behind the dead one
    assert len(await _send_job_queues(rt_b)) == 1
    rt_b.start_worker()

    async def b_started() -> bool:
        return any(s.account == BUSINESS for s in sessions_b.made)

    await until(b_started)
    feed(sessions_b.latest().client, pb.Connected(status=True))

    async def b_sent() -> bool:
        rows = [r for r in await _rows(rt_b, direction="out") if r.id in later]
        return all(r.status == "sent" for r in rows)

    await until(b_sent)
    assert _sent_texts(sessions_b) == ["siete", "ocho"]
    async with rt_b.sessions() as s:
        doing = (await s.execute(text(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' AND lock = :k "
            "AND worker_id IS NULL"),
            {"k": key})).scalar_one()
    assert doing == 0
