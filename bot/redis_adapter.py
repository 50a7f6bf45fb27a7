"""The only module that imports redis: connection, conversation memory and the event bus.

Redis holds nothing that must survive it: memory is rebuilt from PostgreSQL when a
key is missing, and events are notifications (the database is always re-read).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.clock import Clock


class CacheUnavailable(Exception):
    """Redis did not answer; callers fall back to PostgreSQL."""


def connect(url: str) -> aioredis.Redis:
    return aioredis.from_url(url, decode_responses=True, socket_timeout=5, health_check_interval=30)


async def ping(client: aioredis.Redis) -> bool:
    try:
        return bool(await client.ping())
    except (RedisError, OSError) as exc:
        raise CacheUnavailable(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class Turn:
    """One line of conversation memory."""

    role: str  # customer | bot | agent
    text: str
    at: datetime


TurnLoader = Callable[[uuid.UUID, datetime], Awaitable[Sequence[Turn]]]


class ConversationMemory:
    """The recent turns of a conversation, kept for ``ttl`` after the last turn.

    A turn older than ``ttl`` or older than the conversation's context start is never
    returned, so after 24 h of silence (or a resolve) the bot starts fresh.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        ttl: timedelta,
        max_turns: int,
        clock: Clock,
        loader: TurnLoader,
    ) -> None:
        self._redis = client
        self._ttl = ttl
        self._max = max_turns
        self._clock = clock
        self._loader = loader

    @staticmethod
    def _key(conversation_id: uuid.UUID) -> str:
        return f"atiende:mem:{conversation_id}"

    async def recent(
        self, conversation_id: uuid.UUID, *, since: datetime | None = None
    ) -> list[Turn]:
        now = self._clock()
        cutoff = now - self._ttl
        if since is not None and since > cutoff:
            cutoff = since
        try:
            raw = await self._redis.lrange(self._key(conversation_id), 0, -1)
        except (RedisError, OSError):
            raw = None
        if raw:
            turns = [self._decode(str(item)) for item in raw]
        else:
            turns = list(await self._loader(conversation_id, cutoff))
            if turns:
                await self._store(conversation_id, turns)
        return [t for t in turns if t.at >= cutoff][-self._max :]

    async def append(self, conversation_id: uuid.UUID, turns: Sequence[Turn]) -> None:
        if turns:
            await self._store(conversation_id, turns)

    async def forget(self, conversation_id: uuid.UUID) -> None:
        try:
            await self._redis.delete(self._key(conversation_id))
        except (RedisError, OSError):
            pass

    async def _store(self, conversation_id: uuid.UUID, turns: Sequence[Turn]) -> None:
        key = self._key(conversation_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(key, *[self._encode(t) for t in turns])
                pipe.ltrim(key, -self._max, -1)
                pipe.expire(key, int(self._ttl.total_seconds()))
                await pipe.execute()
        except (RedisError, OSError):
            pass  # PostgreSQL is the record; the next read rebuilds

    @staticmethod
    def _encode(turn: Turn) -> str:
        return json.dumps({"r": turn.role, "t": turn.text, "a": turn.at.isoformat()})

    @staticmethod
    def _decode(raw: str) -> Turn:
        data = json.loads(raw)
        return Turn(role=data["r"], text=data["t"], at=datetime.fromisoformat(data["a"]))


class EventBus:
    """Notifications over Redis pub/sub (several app processes see the same events)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        try:
            await self._redis.publish(f"atiende:{topic}", json.dumps(payload, default=str))
        except (RedisError, OSError):
            pass  # a lost notification only delays a reader that also polls

    @asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """Yield a queue of decoded events for ``topics`` while the context is open."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(*[f"atiende:{t}" for t in topics])
        except (RedisError, OSError):
            yield queue
            return

        async def pump() -> None:
            try:
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        queue.put_nowait(json.loads(message["data"]))
            except (RedisError, OSError, asyncio.CancelledError):
                return

        task = asyncio.create_task(pump())
        try:
            yield queue
        finally:
            task.cancel()
            try:
                await pubsub.unsubscribe()
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            except (RedisError, OSError):
                pass


class RedisRateLimiter:
    """Fixed-window failure counters in Redis (login throttling)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client

    async def blocked(self, key: str, *, limit: int) -> int | None:
        count = await self._redis.get(f"atiende:rl:{key}")
        if count is None or int(count) < limit:
            return None
        ttl = int(await self._redis.ttl(f"atiende:rl:{key}"))
        return max(ttl, 1)

    async def hit(self, key: str, *, window_seconds: int) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(f"atiende:rl:{key}")
            pipe.expire(f"atiende:rl:{key}", window_seconds, nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def reset(self, key: str) -> None:
        await self._redis.delete(f"atiende:rl:{key}")
