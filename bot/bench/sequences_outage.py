"""Blocked-contact detection in a simulated outage on our side (part of the sequences
bench): how many reachable customers would be marked "probably blocked", and whether the
real blocks are still found.

``contacts`` customers get one follow-up a day for 14 days from one number; 2% blocked
it (their messages are accepted, never delivered); a quarter of the others are in a
5-day sequence whose last steps fall in the outage (the trap: undelivered messages and
nothing after them). Days 2-5 are an outage, in two kinds: the receipts never reach us
(the messages do go out), or nothing can be sent. The detector runs every simulated
hour, on a fake clock. The same scenario runs once more with the outage guard off.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select

from bot.channels.receipts import DeliveryStatus, Receipt
from bot.channels.simulator import SimulatorChannel
from bot.clock import FakeClock
from bot.errors import ChannelUnavailable
from bot.messages import OutboundMessage, SendReceipt
from bot.sequences import SequenceDraft, Step
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.conversations import Contact, Conversation, Message

DAY = 24 * 60
OUTAGE = range(2, 6)  # days 2-5: four days
DAYS = 14


class DownChannel:
    """The simulator's name, but nothing gets through: our side is offline."""

    name = "simulator"

    async def send(self, message: OutboundMessage) -> SendReceipt:
        raise ChannelUnavailable("network down (simulated)", channel=self.name)


async def run_outage(
    settings: Settings, database_url: str, redis_url: str, *, contacts: int
) -> str:
    lines = [f"outage simulation: {contacts} customers, one follow-up a day for {DAYS} days, "
             f"2% blocked the number, a quarter in a 5-day sequence; outage on days 2-5; "
             f"detector every hour (3 messages, 72 h)"]
    for kind, guard in (("receipts lost", True), ("nothing sent", True),
                        ("receipts lost, outage guard off", False)):
        blocking = settings.blocking if guard else settings.blocking.model_copy(
            update={"outage_conversations": 10**9})
        scenario = _Scenario(settings.model_copy(update={"blocking": blocking}), kind,
                             contacts, f"{len(lines)}")
        lines.append(await scenario.run(database_url, redis_url))
    return "\n".join(lines)


class _Scenario:
    def __init__(self, settings: Settings, kind: str, contacts: int, prefix: str) -> None:
        self.settings, self.kind, self.contacts = settings, kind, contacts
        self.account = f"outage-{prefix}"
        self.phones = [f"+52557{prefix}{i:06d}" for i in range(contacts)]
        self.blockers = set(self.phones[::50])
        reachable = [p for p in self.phones if p not in self.blockers]
        self.short = set(reachable[::4])
        self.clock = FakeClock(datetime(2027, 3, 1, 15, tzinfo=UTC))
        self.lost_upto = 0  # receipts of messages up to this seq never reach us
        self.runs: list[float] = []  # seconds each detector run took

    async def run(self, database_url: str, redis_url: str) -> str:
        rt = await Runtime.create(self.settings, database_url=database_url,
                                  redis_url=redis_url, clock=self.clock)
        try:
            await self._enroll(rt)
            marked: dict[uuid.UUID, int] = {}
            for day in range(DAYS):
                down = day in OUTAGE
                sends_fail = down and self.kind == "nothing sent"
                rt.channels.add(DownChannel() if sends_fail else SimulatorChannel(rt.events))
                if not down:
                    await rt.outbox.send_pending()  # what waited during the outage goes
                await rt.sequence_ticker.tick()
                if down and not sends_fail:
                    self.lost_upto = await _max_seq(rt)
                else:
                    await self._deliver(rt)
                for _ in range(24):
                    started = time.perf_counter()
                    for conversation in (await rt.block_detector.run()).blocked:
                        marked.setdefault(conversation, day)
                    self.runs.append(time.perf_counter() - started)
                    self.clock.advance(hours=1)
            return await self._report(rt, marked)
        finally:
            await rt.close()

    async def _enroll(self, rt: Runtime) -> None:
        long = SequenceDraft(name=f"diaria {self.account}", channel="simulator",
                             account=self.account, on_reply="continue", steps=tuple(
                                 Step(delay_minutes=0 if i == 0 else DAY, text=f"Aviso {i}")
                                 for i in range(DAYS)))
        short = SequenceDraft(name=f"corta {self.account}", channel="simulator",
                              account=self.account, on_reply="continue", steps=long.steps[:5])
        ids = {d.name: (await rt.sequences.create(d, by=None)).id for d in (long, short)}
        for phone in self.phones:
            which = short.name if phone in self.short else long.name
            await rt.sequences.enroll_phone(ids[which], phone=phone, by=None)

    async def _deliver(self, rt: Runtime) -> None:
        """Receipts arrive for everyone but the blockers (the lost ones stay lost)."""
        reachable = [p for p in self.phones if p not in self.blockers]
        async with rt.sessions() as s:
            ids = (await s.execute(
                select(Message.provider_message_id)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .join(Contact, Contact.id == Conversation.contact_id)
                .where(Conversation.account == self.account, Message.status == "sent",
                       Contact.phone_e164.in_(reachable), Message.seq > self.lost_upto)
            )).scalars().all()
        for chunk in _chunks([i for i in ids if i], 200):
            await rt.receipts.record(Receipt("simulator", tuple(chunk), DeliveryStatus.DELIVERED))

    async def _report(self, rt: Runtime, marked: dict[uuid.UUID, int]) -> str:
        async with rt.sessions() as s:
            phone_of = dict((await s.execute(
                select(Conversation.id, Contact.phone_e164)
                .join(Contact, Contact.id == Conversation.contact_id)
                .where(Conversation.account == self.account))).all())
        hits = {phone_of[c]: day for c, day in marked.items()}
        false = [p for p in hits if p not in self.blockers]
        found = [d for p, d in hits.items() if p in self.blockers]
        reachable = len(self.phones) - len(self.blockers)
        days = f", marked on days {min(found)}-{max(found)}" if found else ""
        runs = sorted(self.runs)
        return (f"  {self.kind}: reachable customers marked (false positives) {len(false)} of "
                f"{reachable} ({len([p for p in false if p in self.short])} of them in the "
                f"trap); real blocks found {len(found)} of {len(self.blockers)}{days}; "
                f"detector run p95 {runs[int(0.95 * (len(runs) - 1))] * 1000:.0f} ms")


async def _max_seq(rt: Runtime) -> int:
    async with rt.sessions() as s:
        return int((await s.execute(select(func.coalesce(func.max(Message.seq), 0)))).scalar_one())


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
