"""The WhatsApp numbers of this deployment: their rows (``NumberBook``) and the pool that
runs a supervisor for each enabled number on this node (``NumberPool``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.records import WhatsAppNumber
from bot.errors import NotFound
from bot.logs import get_logger

log = get_logger("atiende.numbers")


@dataclass(frozen=True, slots=True)
class NumberRecord:
    account: str
    label: str | None
    session_id: str
    jid: str | None
    enabled: bool
    state: str
    detail: str | None
    owner_node: str | None
    qr: str | None
    qr_expires_at: datetime | None
    pairing_phone: str | None
    pairing_code: str | None
    retry_at: datetime | None
    restarts: int
    updated_at: datetime | None


def _record(row: WhatsAppNumber) -> NumberRecord:
    return NumberRecord(
        account=row.account, label=row.label, session_id=row.session_id, jid=row.jid,
        enabled=row.enabled, state=row.state, detail=row.detail, owner_node=row.owner_node,
        qr=row.qr, qr_expires_at=row.qr_expires_at, pairing_phone=row.pairing_phone,
        pairing_code=row.pairing_code, retry_at=row.retry_at, restarts=row.restarts,
        updated_at=row.updated_at,
    )


class NumberBook:
    """Reads and writes ``whatsapp_numbers`` rows."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, account: str, label: str | None) -> NumberRecord:
        async with self._sessions() as session, session.begin():
            await session.execute(
                insert(WhatsAppNumber)
                .values(id=uuid.uuid4(), account=account, label=label,
                        session_id=f"atiende-{account.lstrip('+')}", enabled=False)
                .on_conflict_do_update(index_elements=["account"], set_={"label": label})
            )
        found = await self.get(account)
        assert found is not None
        return found

    async def get(self, account: str) -> NumberRecord | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(WhatsAppNumber).where(WhatsAppNumber.account == account))
            ).scalar_one_or_none()
        return _record(row) if row is not None else None

    async def all(self) -> list[NumberRecord]:
        async with self._sessions() as session:
            rows = (
                await session.execute(select(WhatsAppNumber).order_by(WhatsAppNumber.account))
            ).scalars().all()
        return [_record(r) for r in rows]

    async def update(self, account: str, **values: Any) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(WhatsAppNumber).where(WhatsAppNumber.account == account).values(**values)
            )

    async def request_link(self, account: str, *, pairing_phone: str | None) -> NumberRecord:
        """Start (or restart) linking: the owning node shows a fresh QR / pairing code."""
        if await self.get(account) is None:
            raise NotFound(f"no WhatsApp number {account}")
        await self.update(
            account, enabled=True, state="connecting", detail="waiting for a node to connect",
            qr=None, qr_expires_at=None, pairing_code=None, pairing_phone=pairing_phone,
            restarts=0, retry_at=None,
        )
        found = await self.get(account)
        assert found is not None
        return found

    async def disable(self, account: str) -> None:
        await self.update(account, enabled=False)


Supervise = Callable[[str], Coroutine[Any, Any, Any]]
# Called at every check with the number of enabled numbers (fits the store to them).
Prepare = Callable[[list[NumberRecord]], Awaitable[object]]

# States a supervisor ends in that need an admin before trying again.
_PARKED = frozenset({"logged_out", "needs_link", "failed", "stopped"})


class NumberPool:
    """Starts a supervisor task per enabled number; each competes for the number's lease."""

    def __init__(
        self, book: NumberBook, supervise: Supervise, *, interval: float = 5.0,
        threads: int | None = None, prepare: Prepare | None = None,
    ) -> None:
        self._book = book
        self._supervise = supervise
        self._prepare = prepare
        self._interval = interval
        self._threads = threads
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    async def run_forever(self) -> None:
        if self._threads:
            # In-process neonize sessions run every Go call through asyncio.to_thread and
            # keep one thread for life: the default pool (~cpu+4) is too small for many.
            asyncio.get_running_loop().set_default_executor(
                ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="atiende-wa"))
        try:
            while True:
                try:
                    await self.tick()
                except SQLAlchemyError as exc:
                    log.warning("numbers.unavailable", error=str(exc))
                await asyncio.sleep(self._interval)
        finally:
            await self.stop()

    async def tick(self) -> None:
        for account, task in list(self._tasks.items()):
            if task.done():
                del self._tasks[account]
        records = await self._book.all()
        if self._prepare is not None:
            await self._prepare(records)
        for record in records:
            if not record.enabled or record.account in self._tasks:
                continue
            if record.state in _PARKED:
                continue
            self._tasks[record.account] = asyncio.create_task(
                self._supervise(record.account), name=f"whatsapp-{record.account}")

    def running(self) -> list[str]:
        return sorted(a for a, t in self._tasks.items() if not t.done())

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
