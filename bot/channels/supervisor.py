"""Keeps one WhatsApp number connected on this node: lease, session, reconnects, health.

Connection outcomes are handled as whatsmeow means them:

- temporary disconnect / keepalive timeout: whatsmeow reconnects by itself; we only
  report ``disconnected`` until ``connected`` comes back;
- stream replaced: another client opened the same session. Fighting it makes both
  flap, so the session is stopped and retried only after the longest backoff;
- logged out (the phone unlinked us): whatsmeow deleted the device; the session stops
  and the number waits for an admin to link it again (new QR); never auto-retried;
- needs linking: the stored device cannot be resumed (not in whatsmeow's store, or it is
  another number's phone): the JID is cleared and, like logged out, the number waits for
  a new QR or pairing code, with the reason on the page and an alert;
- temporary ban: stopped until the ban expires; other numbers are unaffected;
- anything else (connect failure, store error, a crashed client process, no answer
  within ``connect_timeout``): restart with exponential backoff, up to a cap; then the
  number is ``failed`` and an admin alert is published.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from bot.channels.numbers import NumberBook, NumberRecord
from bot.channels.wa_events import (
    ConnectionEvent,
    ConnState,
    IncomingMessage,
    IncomingReceipt,
    foreign_device,
)
from bot.channels.whatsapp import LiveSessions, WaSession, WhatsAppInbound
from bot.clock import Clock
from bot.errors import AtiendeError, ChannelError
from bot.infra.redis_adapter import CacheUnavailable, EventBus, Lease
from bot.logs import get_logger
from bot.metrics import Metrics

log = get_logger("atiende.supervisor")

SessionEvent = ConnectionEvent | IncomingMessage | IncomingReceipt


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: ``initial * factor**(attempt-1)``, capped."""

    initial: float = 2.0
    maximum: float = 300.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.maximum, self.initial * self.factor ** max(0, attempt - 1))
        return min(self.maximum, base * (1 + rng.uniform(-self.jitter, self.jitter)))


class Session(WaSession, Protocol):
    """A number's live connection (``NeonizeSession``)."""

    events: asyncio.Queue[SessionEvent]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def pairing_code(self, phone: str) -> str: ...


SessionFactory = Callable[[NumberRecord], Session]
Sleep = Callable[[float], Awaitable[None]]


class Adopt(Protocol):
    """Takes the number's send jobs onto this node (``SendTargeting.adopt``)."""

    def __call__(self, account: str, *, drain: bool) -> Awaitable[None]: ...


@dataclass(frozen=True, slots=True)
class SupervisorPolicy:
    backoff: Backoff
    restart_cap: int
    qr_timeout: float
    lease_ttl: float
    inbound_attempts: int = 6
    connect_timeout: float = 90.0  # start → first connection event (QR, connected, failure)
    region: str = "MX"  # to read the phone in a device JID


class NumberSupervisor:
    """Runs one number while this node holds its lease; returns when it should stop."""

    def __init__(
        self,
        account: str,
        *,
        book: NumberBook,
        lease: Lease,
        live: LiveSessions,
        inbound: WhatsAppInbound,
        factory: SessionFactory,
        policy: SupervisorPolicy,
        metrics: Metrics,
        events: EventBus,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        adopt: Adopt | None = None,
    ) -> None:
        self.account = account
        self._adopt = adopt
        self._book = book
        self._lease = lease
        self._live = live
        self._inbound = inbound
        self._factory = factory
        self._policy = policy
        self._metrics = metrics
        self._events = events
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._attempt = 0
        self._lease_lost = asyncio.Event()

    async def run(self) -> ConnState:
        """Supervise until logged out, failed, stopped, or the lease is lost; return why."""
        try:
            if not await self._lease.acquire():
                return ConnState.STANDBY
        except CacheUnavailable as exc:
            log.warning("supervisor.lease_unavailable", account=self.account, error=str(exc))
            return ConnState.STANDBY
        renewer = asyncio.create_task(self._renew_lease(), name=f"lease-{self.account}")
        try:
            return await self._loop()
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            await self._lease.release()

    async def _loop(self) -> ConnState:
        while True:
            record = await self._book.get(self.account)
            if record is None or not record.enabled:
                await self._set(ConnState.STOPPED, "disabled")
                return ConnState.STOPPED
            outcome = await self._run_session(record)
            state = outcome.state
            if state is ConnState.STANDBY:  # lease lost: another node takes over
                return state
            if state in (ConnState.LOGGED_OUT, ConnState.NEEDS_LINK):
                await self._set(state, outcome.detail or "logged out: link the number again",
                                jid=None, qr=None, pairing_code=None)
                await self._alert(state, outcome.detail)
                return state
            if state is ConnState.STOPPED:
                await self._set(state, outcome.detail, qr=None, pairing_code=None,
                                enabled=False)
                return state
            if state is ConnState.TEMP_BANNED:
                wait = outcome.retry_after or self._policy.backoff.maximum
                await self._set(state, outcome.detail,
                                retry_at=self._clock() + timedelta(seconds=wait))
                await self._alert(state, outcome.detail)
                await self._sleep(wait)
                continue
            self._attempt += 1
            self._metrics.number_restarts.labels(self.account, state.value).inc()
            if self._attempt > self._policy.restart_cap:
                detail = f"gave up after {self._policy.restart_cap} restarts: {outcome.detail}"
                await self._set(ConnState.FAILED, detail)
                await self._alert(ConnState.FAILED, detail)
                return ConnState.FAILED
            if state is ConnState.STREAM_REPLACED:
                wait = self._policy.backoff.maximum
            else:
                wait = self._policy.backoff.delay(self._attempt, self._rng)
            shown = state if state is ConnState.STREAM_REPLACED else ConnState.RECONNECTING
            await self._set(shown, f"{outcome.detail} (restart {self._attempt} in {wait:.0f}s)",
                            restarts=self._attempt)
            await self._sleep(wait)

    async def _run_session(self, record: NumberRecord) -> ConnectionEvent:
        unusable = await self._unusable_device(record)
        if unusable is not None:
            return ConnectionEvent(self.account, ConnState.NEEDS_LINK, detail=unusable)
        session = self._factory(record)
        await self._set(ConnState.CONNECTING, None)
        try:
            await session.start()
        except ChannelError as exc:
            await self._stop(session)
            return ConnectionEvent(self.account, ConnState.FAILED, detail=str(exc))
        try:
            return await self._watch(session, record)
        finally:
            await self._stop(session)

    async def _unusable_device(self, record: NumberRecord) -> str | None:
        """Why the stored device must not be resumed for this number (None: it may)."""
        if not record.jid:
            return None
        owner = foreign_device(record.jid, self.account, self._policy.region)
        if owner is not None:  # e.g. rows restored or edited by hand: never run it twice
            return (f"the stored device {record.jid} is {owner}'s, not this number's: "
                    "link this number again")
        return None

    async def _stop(self, session: Session) -> None:
        self._live.drop(self.account, session)
        try:
            await session.stop()
        except AtiendeError as exc:
            log.warning("supervisor.stop_failed", account=self.account, error=str(exc))

    async def _watch(self, session: Session, record: NumberRecord) -> ConnectionEvent:
        loop = asyncio.get_running_loop()
        qr_deadline: float | None = None
        answer_deadline: float | None = loop.time() + self._policy.connect_timeout
        pairing = {"asked": False}
        while True:
            if self._lease_lost.is_set():
                return ConnectionEvent(self.account, ConnState.STANDBY, detail="lease lost")
            if qr_deadline is not None and loop.time() > qr_deadline:
                return ConnectionEvent(
                    self.account, ConnState.STOPPED,
                    detail="the QR was not scanned in time: start the link again")
            if answer_deadline is not None and loop.time() > answer_deadline:
                return ConnectionEvent(
                    self.account, ConnState.FAILED,
                    detail=f"no answer from WhatsApp in {self._policy.connect_timeout:.0f}s")
            try:
                event = await asyncio.wait_for(session.events.get(), timeout=0.5)
            except TimeoutError:
                continue
            if isinstance(event, IncomingMessage):
                await self._store(event)
                continue
            if isinstance(event, IncomingReceipt):
                await self._inbound.receipt(event)
                continue
            answer_deadline = None
            ended = await self._on_connection(session, record, event, pairing)
            if ended is not None:
                return ended
            if event.state is ConnState.PAIRING and qr_deadline is None:
                qr_deadline = loop.time() + self._policy.qr_timeout
            elif event.state is ConnState.CONNECTED:
                qr_deadline = None

    async def _on_connection(
        self, session: Session, record: NumberRecord, event: ConnectionEvent,
        pairing: dict[str, bool],
    ) -> ConnectionEvent | None:
        """Apply one connection event; return it when the session must end."""
        if event.state is ConnState.PAIRING:
            expires = self._clock() + timedelta(seconds=self._policy.qr_timeout)
            await self._set(ConnState.PAIRING, "scan the QR or enter the pairing code",
                            qr=event.qr, qr_expires_at=expires)
            if record.pairing_phone and not pairing["asked"]:
                pairing["asked"] = True
                await self._pairing_code(session, record.pairing_phone)
        elif event.state is ConnState.CONNECTED:
            owner = foreign_device(event.jid, self.account, self._policy.region) if event.jid \
                else None
            if owner is not None:  # the QR was scanned with another number's phone
                return ConnectionEvent(self.account, ConnState.NEEDS_LINK, detail=(
                    f"the QR was scanned by {owner}, not by this number: remove the device "
                    "in that phone's Linked devices and link again from this number's phone"))
            self._attempt = 0
            self._live.put(session)
            fields: dict[str, object] = {"qr": None, "pairing_code": None,
                                         "pairing_phone": None, "restarts": 0,
                                         "retry_at": None}
            if event.jid:
                fields["jid"] = event.jid
            await self._set(ConnState.CONNECTED, event.detail, **fields)
            if self._adopt is not None:  # send what waited while nobody held the number
                await self._adopt(self.account, drain=True)
        elif event.state is ConnState.DISCONNECTED:
            await self._set(ConnState.DISCONNECTED, event.detail)  # whatsmeow reconnects
        else:
            return event
        return None

    async def _pairing_code(self, session: Session, phone: str) -> None:
        try:
            code = await session.pairing_code(phone)
        except ChannelError as exc:
            await self._set(ConnState.PAIRING, f"pairing code failed: {exc}")
            return
        await self._set(ConnState.PAIRING, "enter the pairing code on the phone",
                        pairing_code=code)

    async def _store(self, event: IncomingMessage) -> None:
        """Store with bounded retries: whatsmeow has already acknowledged this message."""
        for attempt in range(1, self._policy.inbound_attempts + 1):
            try:
                await self._inbound.message(event)
                return
            except AtiendeError as exc:
                log.warning("whatsapp.inbound_refused", account=self.account,
                            wamid=event.message_id, error=str(exc))
                return
            except (OSError, SQLAlchemyError) as exc:
                if attempt == self._policy.inbound_attempts:
                    log.error("whatsapp.inbound_not_stored", account=self.account,
                              wamid=event.message_id, error=str(exc), raw=event.raw)
                    return
                await self._sleep(self._policy.backoff.delay(attempt, self._rng))

    async def _renew_lease(self) -> None:
        interval = max(0.2, self._policy.lease_ttl / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self._lease.renew():
                    log.warning("supervisor.lease_lost", account=self.account)
                    self._lease_lost.set()
                    return
                if self._adopt is not None:  # a job routed while the lease changed hands
                    await self._adopt(self.account, drain=False)
            except CacheUnavailable as exc:
                log.warning("supervisor.lease_renew_failed", account=self.account,
                            error=str(exc))

    async def _set(self, state: ConnState, detail: str | None, **fields: object) -> None:
        for other in ConnState:
            self._metrics.number_health.labels(self.account, other.value).set(
                1 if other is state else 0)
        await self._book.update(self.account, state=state.value, detail=detail,
                                owner_node=self._lease.holder, **fields)
        log.info("whatsapp.state", account=self.account, state=state.value, detail=detail)

    async def _alert(self, state: ConnState, detail: str | None) -> None:
        log.error("whatsapp.number_alert", account=self.account, state=state.value,
                  detail=detail)
        await self._events.publish(
            "admin:alerts",
            {"kind": "whatsapp_number", "account": self.account, "state": state.value,
             "detail": detail},
        )
