"""Outbound pacing per number, driven by a fake clock against a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.clock import FakeClock
from bot.conversation.channel import Channel, ChannelRegistry
from bot.conversation.outbox import OutboxSender
from bot.conversation.pacing import Pacer
from bot.infra.redis_adapter import TokenBucket
from bot.messages import OutboundMessage, SendReceipt
from bot.settings import Settings
from bot.settings.channels import PacingConfig
from bot.wiring.runtime import Runtime
from handoff.conversations import Contact, Conversation, Message

PACED = "whatsapp"
NUMBER = "+525500000001"
# 2026-01-01 12:00 UTC = 06:00 in Mexico City
NOON_UTC = datetime(2026, 1, 1, 18, tzinfo=UTC)  # 12:00 local


class RecordingChannel:
    """A WhatsApp-like transport that records what it was asked to do, with the clock time."""

    name = PACED

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.log: list[tuple[str, datetime, str | None]] = []

    async def send(self, message: OutboundMessage) -> SendReceipt:
        self.log.append(("send", self.clock(), message.text))
        return SendReceipt(provider_message_id=f"wa-{message.outbox_id}")

    async def mark_read(self, message: OutboundMessage) -> None:
        self.log.append(("read", self.clock(), message.reply_to))

    async def typing(self, message: OutboundMessage, *, active: bool) -> None:
        self.log.append(("typing" if active else "paused", self.clock(), None))

    def sends(self) -> list[datetime]:
        return [at for kind, at, _ in self.log if kind == "send"]


@pytest.fixture
async def bare_runtime(
    settings: Settings, database_url: str, redis_url: str
) -> AsyncIterator[Runtime]:
    """A runtime without a worker: the test drives the send jobs itself."""
    rt = await Runtime.create(settings, database_url=database_url, redis_url=redis_url)
    yield rt
    await rt.close()


def _pacer(rt: Runtime, clock: FakeClock, **overrides: object) -> Pacer:
    config = PacingConfig(**{  # type: ignore[arg-type]
        "channels": (PACED,), "messages_per_minute": 6, "burst": 2, "jitter_seconds": 0.5,
        "typing_chars_per_second": 10, "typing_min_seconds": 1, "typing_max_seconds": 5,
        "daily_cap": 0, **overrides})
    return Pacer(config, bucket=TokenBucket(rt.redis), clock=clock,
                 timezone="America/Mexico_City", rng=random.Random(7))


async def test_bucket_spreads_messages_as_configured(bare_runtime: Runtime) -> None:
    clock = FakeClock(NOON_UTC)
    pacer = _pacer(bare_runtime, clock)
    sent_at: list[float] = []
    for _ in range(8):
        while not (d := await pacer.reserve(PACED, NUMBER, 40)).send:
            assert d.reason == "rate"
            clock.advance(seconds=d.delay)
        sent_at.append((clock() - NOON_UTC).total_seconds())
        assert d.typing == 4.0 and 4.0 <= d.pause <= 4.5  # 40 chars / 10 cps + jitter
    # burst of 2, then one every 10 s (6 per minute)
    assert sent_at[:2] == [0, 0]
    gaps = [round(b - a, 3) for a, b in zip(sent_at[1:], sent_at[2:], strict=False)]
    assert gaps == [10.0] * 6
    # another number is not slowed down by this one
    assert (await pacer.reserve(PACED, "+525500000002", 5)).send


async def test_quiet_hours_and_daily_cap(bare_runtime: Runtime) -> None:
    clock = FakeClock(datetime(2026, 1, 2, 5, 30, tzinfo=UTC))  # 23:30 local
    pacer = _pacer(bare_runtime, clock, quiet_start=time(22), quiet_end=time(8), daily_cap=3)
    quiet = await pacer.reserve(PACED, NUMBER, 10)
    assert not quiet.send and quiet.reason == "quiet_hours"
    assert quiet.delay == pytest.approx(8.5 * 3600)  # until 08:00 local
    clock.advance(seconds=quiet.delay)
    for _ in range(3):
        d = await pacer.reserve(PACED, NUMBER, 10)
        if not d.send:
            clock.advance(seconds=d.delay)
            d = await pacer.reserve(PACED, NUMBER, 10)
        assert d.send
    capped = await pacer.reserve(PACED, NUMBER, 10)
    assert not capped.send and capped.reason == "daily_cap"
    assert capped.delay == pytest.approx(16 * 3600 + 1, abs=30)  # until local midnight
    clock.advance(seconds=capped.delay)
    night = await pacer.reserve(PACED, NUMBER, 10)  # a new day, but quiet until 08:00
    assert not night.send and night.reason == "quiet_hours"
    clock.advance(seconds=night.delay)
    assert (await pacer.reserve(PACED, NUMBER, 10)).send


def _outbox(
    rt: Runtime, clock: FakeClock, channel: Channel,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> OutboxSender:
    """The runtime's outbox parts around ``channel``, paced on ``clock``; its waits
    (typing, jitter) advance ``clock`` unless ``sleep`` is given."""

    async def advance(seconds: float) -> None:
        clock.advance(seconds=seconds)

    return OutboxSender(
        sessions=rt.sessions, fast=rt.autocommit, channels=ChannelRegistry([channel]),
        metrics=rt.metrics, pacer=_pacer(rt, clock), scheduler=rt.jobs,
        sleep=sleep or advance,
    )


async def _conversation(rt: Runtime, channel: str = PACED) -> uuid.UUID:
    async with rt.sessions() as s, s.begin():
        contact = Contact(id=uuid.uuid4(), phone_e164="+525512340000", name="Chuy")
        conv = Conversation(id=uuid.uuid4(), contact_id=contact.id, channel=channel,
                            account=NUMBER, owner="bot")
        s.add(contact)
        await s.flush()
        s.add(conv)
        await s.flush()
        inbound = Message(id=uuid.uuid4(), conversation_id=conv.id, direction="in",
                          author="customer", kind="text", channel=channel,
                          provider_message_id="3EB0CUSTOMER", text="hola", status="processed")
        s.add(inbound)
        await s.flush()
        for i in range(5):
            s.add(Message(id=uuid.uuid4(), conversation_id=conv.id, direction="out",
                          author="bot", kind="text", channel=channel, status="pending",
                          text=f"respuesta {i} " + "x" * 20, in_reply_to=inbound.id,
                          reply_seq=i))
    return conv.id


async def _statuses(rt: Runtime, conversation_id: uuid.UUID) -> list[str]:
    async with rt.sessions() as s:
        return list((await s.execute(
            select(Message.status).where(Message.conversation_id == conversation_id,
                                         Message.direction == "out").order_by(Message.seq)
        )).scalars())


async def test_burst_is_queued_durably_never_dropped(bare_runtime: Runtime) -> None:
    clock = FakeClock(NOON_UTC)
    channel = RecordingChannel(clock)
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        clock.advance(seconds=seconds)

    outbox = _outbox(bare_runtime, clock, channel, sleep)
    conversation_id = await _conversation(bare_runtime)
    # the pipeline's call: nothing is sent inline for a paced number, a send job is queued
    assert await outbox.send_pending(conversation_id) == 0
    jobs = await bare_runtime.jobs.scheduled_sends()
    assert len(jobs) == 1 and jobs[0]["args"] == {"channel": PACED, "account": NUMBER}
    # a second call does not queue a second job for the same number
    await outbox.send_pending(conversation_id)
    assert len(await bare_runtime.jobs.scheduled_sends()) == 1
    await bare_runtime.redis.flushall()  # fresh bucket for the drains below
    async with bare_runtime.sessions() as s, s.begin():  # as if a worker picked the job up
        await s.execute(text("UPDATE procrastinate_jobs SET status = 'doing'"))
    sent = await outbox.drain_number(PACED, NUMBER)
    assert sent == 2  # the burst
    assert await _statuses(bare_runtime, conversation_id) == ["sent"] * 2 + ["pending"] * 3
    later = [j for j in await bare_runtime.jobs.scheduled_sends()
             if j["status"] == "todo" and j["scheduled_at"]]
    assert later, "the rest must be scheduled, not dropped"
    # typing before each reply: read mark (of the customer's message), typing, then the send
    kinds = [k for k, _, _ in channel.log]
    assert kinds[:3] == ["read", "typing", "send"]
    assert channel.log[0][2] == "3EB0CUSTOMER"
    assert all(3.0 <= p <= 3.5 for p in pauses)  # 31 chars / 10 cps, +jitter ≤ 0.5
    while "pending" in await _statuses(bare_runtime, conversation_id):
        clock.advance(seconds=10)
        await outbox.drain_number(PACED, NUMBER)
    assert await _statuses(bare_runtime, conversation_id) == ["sent"] * 5
    texts = [t for k, _, t in channel.log if k == "send"]
    assert texts == [f"respuesta {i} " + "x" * 20 for i in range(5)]  # in order
    stamps = channel.sends()
    assert all((b - a) >= timedelta(seconds=3) for a, b in zip(stamps, stamps[1:], strict=False))


class BlockingChannel(RecordingChannel):
    """A send that hangs until released (a slow provider), to look at the row mid-send."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.sending = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, message: OutboundMessage) -> SendReceipt:
        self.sending.set()
        await self.release.wait()
        return await super().send(message)


async def test_a_reply_taken_late_is_not_put_back_while_it_is_being_sent(
    bare_runtime: Runtime,
) -> None:
    """Recovery of rows a dead sender left in ``sending`` goes by the claim time: a reply
    that waited ten minutes for its number and was just taken is not reset (it would be
    sent twice); a claim ten minutes old is."""
    clock = FakeClock(NOON_UTC)
    channel = BlockingChannel(clock)

    outbox = _outbox(bare_runtime, clock, channel)
    conversation_id = await _conversation(bare_runtime)
    async with bare_runtime.sessions() as s, s.begin():
        await s.execute(text(
            "UPDATE messages SET created_at = now() - interval '10 minutes' "
            "WHERE direction = 'out'"
        ))
    drain = asyncio.create_task(outbox.drain_number(PACED, NUMBER))
    try:
        async with asyncio.timeout(10):
            await channel.sending.wait()
        assert (await _statuses(bare_runtime, conversation_id))[0] == "sending"
        assert await outbox.recover_stuck(older_than=timedelta(seconds=120)) == 0
        async with bare_runtime.sessions() as s, s.begin():  # as if its sender had died
            await s.execute(text(
                "UPDATE messages SET claimed_at = now() - interval '10 minutes' "
                "WHERE status = 'sending'"
            ))
        assert await outbox.recover_stuck(older_than=timedelta(seconds=120)) == 1
        assert (await _statuses(bare_runtime, conversation_id))[0] == "pending"
    finally:
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain


async def test_bot_reply_not_sent_after_a_human_took_over(bare_runtime: Runtime) -> None:
    clock = FakeClock(NOON_UTC)
    channel = RecordingChannel(clock)

    outbox = _outbox(bare_runtime, clock, channel)
    conversation_id = await _conversation(bare_runtime)
    async with bare_runtime.sessions() as s, s.begin():
        conv = await s.get(Conversation, conversation_id)
        assert conv is not None
        conv.owner = "human"
    assert await outbox.drain_number(PACED, NUMBER) == 0
    assert await _statuses(bare_runtime, conversation_id) == ["cancelled"] * 5
    assert channel.sends() == []


async def test_simulator_is_not_paced(tmp_path: Path, bare_runtime: Runtime) -> None:
    assert not bare_runtime.outbox._paced or "simulator" not in bare_runtime.outbox._paced
    assert bare_runtime.settings.channels.pacing.channels == ("whatsapp",)


async def test_number_not_connected_keeps_rows_waiting(bare_runtime: Runtime) -> None:
    from bot.channels.whatsapp import LiveSessions, WhatsAppChannel

    clock = FakeClock(NOON_UTC)

    nothing_connected = WhatsAppChannel(LiveSessions())
    outbox = _outbox(bare_runtime, clock, nothing_connected)
    conversation_id = await _conversation(bare_runtime)
    for _ in range(10):  # far more tries than MAX_SEND_ATTEMPTS would allow
        await outbox.drain_number(PACED, NUMBER)
        clock.advance(seconds=60)
    async with bare_runtime.sessions() as s:
        rows = (await s.execute(select(Message.status, Message.attempts).where(
            Message.conversation_id == conversation_id, Message.direction == "out"))).all()
    assert [tuple(r) for r in rows] == [("pending", 0)] * 5
    waiting = [j for j in await bare_runtime.jobs.scheduled_sends() if j["status"] == "todo"]
    assert waiting and waiting[0]["scheduled_at"] is not None
