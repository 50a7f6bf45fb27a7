"""Long-lived API keys for integrations (``atiende apikeys create --name N --role R``).

A key is shown once when created (``atk_…``); only its SHA-256 is stored. It works as a
bearer token wherever a login token does, with the role it was given, until revoked.
Its last use is recorded (at most once a minute, not one write per request).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.auth import InvalidUser, Principal, UserExists
from handoff.roles import Role
from handoff.tables import ApiKey

KEY_PREFIX = "atk_"
LAST_USE_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What lists show about a key (never the key)."""

    id: uuid.UUID
    name: str
    role: str
    prefix: str
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: str  # shown once
    info: ApiKeyInfo


def is_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(row.id, row.name, row.role, row.prefix, row.created_at, row.created_by,
                      row.last_used_at, row.revoked_at)


class ApiKeys:
    """Creates, lists, revokes and resolves API keys."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, clock: Callable[[], datetime]
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    async def create(self, *, name: str, role: Role, created_by: str | None) -> CreatedKey:
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidUser("an API key needs a name of 1-100 characters")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(id=uuid.uuid4(), name=name, role=role.value, key_hash=_digest(key),
                     prefix=key[:10], created_by=created_by, created_at=self._clock())
        try:
            async with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError as exc:
            raise UserExists(f"an active API key named {name!r} already exists") from exc
        return CreatedKey(key, _info(row))

    async def list(self) -> list[ApiKeyInfo]:
        async with self._sessions() as session:
            rows = (await session.execute(select(ApiKey).order_by(ApiKey.created_at))).scalars()
            return [_info(r) for r in rows]

    async def revoke(self, key_id_or_name: str) -> ApiKeyInfo | None:
        """Revoke by id or by (active) name; None when there is no such active key."""
        try:
            match = ApiKey.id == uuid.UUID(key_id_or_name)
        except ValueError:
            match = ApiKey.name == key_id_or_name
        async with self._sessions() as session, session.begin():
            row = (
                await session.execute(
                    update(ApiKey).where(match, ApiKey.revoked_at.is_(None))
                    .values(revoked_at=self._clock()).returning(ApiKey)
                )
            ).scalar_one_or_none()
            return _info(row) if row is not None else None

    async def resolve(self, key: str) -> Principal | None:
        """The principal a valid, unrevoked key acts as; records its last use."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            row = (
                await session.execute(
                    select(ApiKey).where(ApiKey.key_hash == _digest(key),
                                         ApiKey.revoked_at.is_(None))
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            if row.last_used_at is None or now - row.last_used_at >= LAST_USE_EVERY:
                await session.execute(
                    update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now)
                )
        return Principal(row.id, f"apikey:{row.name}", row.name, Role(row.role))
