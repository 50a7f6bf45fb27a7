"""Erasing customers: the database in one transaction (``store.erase_in``), then their
media objects and conversation memory. An erasure whose objects could not all be
deleted (the object store or Redis down) is recorded as unfinished and finished later:
by the periodic job, by erasing the same number again, or ``atiende contacts erase
--resume``. Nothing is ever half-erased in the database.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import is_retryable
from bot.errors import AtiendeError
from bot.infra.redis_adapter import CacheUnavailable
from bot.logs import get_logger
from bot.media import MediaStore
from bot.privacy.metrics import PrivacyMetrics
from bot.privacy.store import ContactChanged, Draft, erase_in, existing_tables, last_erasure
from bot.privacy.values import (
    SIM_PREFIX,
    AlreadyErased,
    CustomerNotFound,
    CustomerRef,
    Erased,
    ObjectsLeft,
)
from handoff.audit import Actor

__all__ = ["Eraser", "MemoryEraser", "Outcome"]

log = get_logger("atiende.privacy")

ATTEMPTS = 4  # a deadlock or lock timeout with concurrent work is retried this often
DELETE_CONCURRENCY = 8


class MemoryEraser(Protocol):
    """The conversation memory (``ConversationMemory``): delete conversations' keys."""

    async def erase(self, conversation_ids: Collection[uuid.UUID]) -> int: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """One customer of a bulk erasure: erased, or why not."""

    ref: CustomerRef
    erased: Erased | None = None
    error: str | None = None


class Eraser:
    """Erases customers (one, or many in bounded batches) and finishes what is left."""

    def __init__(
        self, *, sessions: async_sessionmaker[AsyncSession], media: MediaStore,
        memory: MemoryEraser, metrics: PrivacyMetrics, settle_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._media = media
        self._memory = memory
        self._metrics = metrics
        self._settle = settle_seconds
        self._tables: frozenset[str] | None = None

    async def erase(self, ref: CustomerRef, *, actor: Actor, source: str) -> Erased:
        """Erase one customer. CustomerNotFound for an unknown number; AlreadyErased when
        it was erased before (an unfinished earlier erasure is finished instead)."""
        ids = (await self._find_many([ref]))[ref]
        if ids:
            erased = {e.contact_id: e for e in
                      await self._erase_batch(ids, actor=actor, source=source)}
            done = [erased[c] for c in ids if c in erased]
            if done:
                return done[0].joined(done[1:])
        return await self._erased_before(ref)

    async def erase_many(
        self, refs: Sequence[CustomerRef], *, actor: Actor, source: str, batch: int,
        pause_seconds: float = 0.0, yield_ratio: float = 0.0,
    ) -> AsyncIterator[list[Outcome]]:
        """Erase many customers, ``batch`` per transaction; after each batch it pauses
        ``pause_seconds`` plus ``yield_ratio`` times what the batch took, so the inbound
        pipeline keeps its share of the machine. Yields each batch's outcomes (unknown
        and already erased numbers are reported, not fatal)."""
        for start in range(0, len(refs), batch):
            began = time.monotonic()
            chunk = refs[start:start + batch]
            found = await self._find_many(chunk)
            ids = list(dict.fromkeys(c for cids in found.values() for c in cids))
            done = {e.contact_id: e for e in await self._erase_batch(ids, actor=actor,
                                                                     source=source)}
            outcomes = []
            for ref in chunk:
                mine = [done[c] for c in found.get(ref, []) if c in done]
                if mine:
                    outcomes.append(Outcome(ref, erased=mine[0].joined(mine[1:])))
                    continue
                try:
                    outcomes.append(Outcome(ref, erased=await self._erased_before(ref)))
                except AtiendeError as exc:
                    outcomes.append(Outcome(ref, error=str(exc)))
            took = time.monotonic() - began
            yield outcomes
            if pause_seconds or yield_ratio:
                await asyncio.sleep(pause_seconds + yield_ratio * took)

    async def _erase_batch(
        self, contact_ids: list[uuid.UUID], *, actor: Actor, source: str
    ) -> list[Erased]:
        if not contact_ids:
            return []
        drafts = await self._transaction(contact_ids, actor=actor, source=source)
        finished = await self.finish_many([d.erasure_id for d in drafts])
        results = []
        for draft in drafts:
            left = finished.get(draft.erasure_id, ObjectsLeft(draft.erasure_id, 0, 0, 0))
            self._metrics.erasures.labels(source).inc()
            for table, n in draft.counts.items():
                self._metrics.erased_rows.labels(table).inc(n)
            log.info("privacy.erased", contact_id=str(draft.contact_id),
                     erasure_id=str(draft.erasure_id), source=source, actor=actor.email
                     or actor.kind, media_objects=len(draft.media_keys),
                     pending=left.pending, **{f"rows_{k}": v for k, v in draft.counts.items()})
            results.append(Erased(
                draft.contact_id, draft.erasure_id, dict(draft.counts),
                media_objects=len(draft.media_keys), opt_out_kept=draft.opted_out,
                complete=left.pending == 0 and left.error is None,
            ))
        return results

    async def _transaction(
        self, contact_ids: list[uuid.UUID], *, actor: Actor, source: str
    ) -> list[Draft]:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self._sessions() as session, session.begin():
                    if self._tables is None:
                        self._tables = await existing_tables(session)
                    return await erase_in(session, contact_ids, actor=actor, source=source,
                                          tables=self._tables)
            except (DBAPIError, ContactChanged) as exc:
                if attempt == ATTEMPTS or not (
                    isinstance(exc, ContactChanged) or is_retryable(exc)
                ):
                    raise
                log.info("privacy.erase_retry", attempt=attempt, error=str(exc)[:200])
                await asyncio.sleep(0.1 * attempt)
        raise AssertionError("unreachable")

    async def _find_many(
        self, refs: Sequence[CustomerRef]
    ) -> dict[CustomerRef, list[uuid.UUID]]:
        """The contacts (not erased) each ref means: by id; by key, plus the simulator's
        contact of the same number for a real number."""
        wanted = {r: ([r.key, SIM_PREFIX + r.key] if r.key and r.key.startswith("+")
                      else [r.key] if r.key else []) for r in refs}
        keys = [k for ks in wanted.values() for k in ks]
        ids = [r.contact_id for r in refs if r.contact_id]
        async with self._sessions() as session:
            rows = (await session.execute(text(
                "SELECT id, phone_e164 FROM contacts WHERE erased_at IS NULL "
                "AND (phone_e164 = ANY(:keys) OR id = ANY(:ids))"),
                {"keys": keys, "ids": ids})).all()
        by_key = {r.phone_e164: r.id for r in rows}
        by_id = {r.id for r in rows}
        return {
            r: ([by_key[k] for k in wanted[r] if k in by_key] if r.key
                else [r.contact_id] if r.contact_id is not None and r.contact_id in by_id
                else [])
            for r in refs
        }

    async def _erased_before(self, ref: CustomerRef) -> Erased:
        """The customer is not stored (any more): finish an unfinished erasure of theirs,
        else say when they were erased, or that nobody is stored under the number."""
        async with self._sessions() as session:
            row = await last_erasure(session, key=ref.key, contact_id=ref.contact_id)
        if row is None:
            raise CustomerNotFound(f"no customer is stored under {ref.label()}")
        if row.state != "objects":
            raise AlreadyErased(ref.label(), row.id, row.requested_at)
        left = await self.finish_objects(row.id)
        return Erased(row.contact_id, row.id, dict(row.counts), len(row.media_keys),
                      opt_out_kept=bool(row.opted_out), resumed=True,
                      complete=left.pending == 0 and left.error is None)

    async def finish_objects(self, erasure_id: uuid.UUID) -> ObjectsLeft:
        """Delete an erasure's conversation memory and media objects still left; what
        fails stays recorded for the next try."""
        left = await self.finish_many([erasure_id])
        return left.get(erasure_id, ObjectsLeft(erasure_id, 0, 0, 0))

    async def finish_many(self, erasure_ids: list[uuid.UUID]) -> dict[uuid.UUID, ObjectsLeft]:
        """``finish_objects`` for several erasures at once: one read, one memory delete,
        the media deletions side by side, one write."""
        async with self._sessions() as session:
            rows = (await session.execute(text(
                "SELECT id, conversation_ids, pending_keys FROM privacy_erasures "
                "WHERE id = ANY(:ids) AND state = 'objects'"), {"ids": erasure_ids})).all()
        if not rows:
            return {}
        memory_error = None
        memory = 0
        try:
            memory = await self._memory.erase([c for r in rows for c in r.conversation_ids])
        except CacheUnavailable as exc:
            memory_error = f"memory: {exc}"
        failed, media_error = await self._delete_media([k for r in rows for k in r.pending_keys])
        self._metrics.erased_objects.labels("memory").inc(memory)
        done: dict[uuid.UUID, ObjectsLeft] = {}
        for row in rows:
            pending = [k for k in row.pending_keys if k in set(failed)]
            error = memory_error or (media_error if pending else None)
            deleted = len(row.pending_keys) - len(pending)
            self._metrics.erased_objects.labels("media").inc(deleted)
            done[row.id] = ObjectsLeft(row.id, deleted, len(pending), 0, error)
        await self._record_objects(done, set(failed))
        for left in done.values():
            if left.error:
                log.warning("privacy.objects_pending", erasure_id=str(left.erasure_id),
                            pending=left.pending, error=left.error[:300])
        return done

    async def _record_objects(
        self, done: dict[uuid.UUID, ObjectsLeft], failed: set[str]
    ) -> None:
        finished = "settling" if self._settle > 0 else "done"
        clean = [i for i, left in done.items() if left.error is None]
        async with self._sessions() as session, session.begin():
            if clean:
                await session.execute(text(
                    "UPDATE privacy_erasures SET pending_keys = '{}', last_error = NULL, "
                    "state = CAST(:state AS varchar), objects_done_at = now(), "
                    "finished_at = CASE WHEN CAST(:state AS varchar) = 'done' THEN now() END "
                    "WHERE id = ANY(:ids) AND state = 'objects'"),
                    {"state": finished, "ids": clean})
            for erasure_id, left in done.items():
                if left.error is None:
                    continue
                await session.execute(text(
                    "UPDATE privacy_erasures SET last_error = :error, pending_keys = "
                    "ARRAY(SELECT k FROM unnest(pending_keys) k WHERE k = ANY(:failed)) "
                    "WHERE id = :id AND state = 'objects'"),
                    {"error": left.error, "failed": sorted(failed), "id": erasure_id})

    async def _delete_media(self, keys: list[str]) -> tuple[list[str], str | None]:
        gate = asyncio.Semaphore(DELETE_CONCURRENCY)
        errors: list[str] = []

        async def delete(key: str) -> str | None:
            async with gate:
                try:
                    await self._media.delete(key)
                except AtiendeError as exc:
                    errors.append(f"media {key}: {exc}")
                    return key
                return None

        failed = [k for k in await asyncio.gather(*(delete(k) for k in keys)) if k]
        return failed, (errors[0] if errors else None)

    async def resume(self, *, limit: int = 100) -> dict[str, int]:
        """Finish unfinished erasures (objects left; the last memory sweep after the
        settle time); returns how many of each were done."""
        done = {"objects": 0, "settled": 0}
        async with self._sessions() as session:
            pending = (await session.execute(text(
                "SELECT id FROM privacy_erasures WHERE state = 'objects' "
                "ORDER BY requested_at LIMIT :n"), {"n": limit})).scalars().all()
            settling = (await session.execute(text(
                "SELECT id, conversation_ids FROM privacy_erasures WHERE state = 'settling' "
                "AND objects_done_at <= now() - make_interval(secs => :s) "
                "ORDER BY requested_at LIMIT :n"), {"s": self._settle, "n": limit})).all()
        for start in range(0, len(pending), 50):
            finished = await self.finish_many(list(pending[start:start + 50]))
            done["objects"] += sum(1 for left in finished.values() if left.error is None)
        for row in settling:
            if await self._settle_one(row.id, row.conversation_ids):
                done["settled"] += 1
        async with self._sessions() as session:
            unfinished = await session.scalar(text(
                "SELECT count(*) FROM privacy_erasures WHERE state <> 'done'"))
        self._metrics.unfinished.set(float(unfinished or 0))
        return done

    async def recent(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """The erasure log, newest first (ids, hashes' owners and counts; no numbers)."""
        async with self._sessions() as session:
            rows = await session.execute(text(
                "SELECT id, contact_id, requested_at, source, actor_kind, actor_email, state, "
                "opted_out, counts, cardinality(pending_keys) AS pending_objects, finished_at "
                "FROM privacy_erasures ORDER BY requested_at DESC LIMIT :n"), {"n": limit})
            return [dict(r._mapping) for r in rows]

    async def _settle_one(self, erasure_id: uuid.UUID, conversations: list[Any]) -> bool:
        """The last memory sweep: a worker that committed a reply just before the erasure
        may have written its memory after the first sweep."""
        try:
            await self._memory.erase(conversations)
        except CacheUnavailable as exc:
            log.warning("privacy.settle_failed", erasure_id=str(erasure_id), error=str(exc))
            return False
        async with self._sessions() as session, session.begin():
            await session.execute(text(
                "UPDATE privacy_erasures SET state = 'done', finished_at = now() "
                "WHERE id = :id AND state = 'settling'"), {"id": erasure_id})
        return True
