"""Database engine, sessions and migrations (SQLAlchemy 2 async on psycopg 3)."""

from __future__ import annotations

import contextlib
import sys
import sysconfig
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeAlias

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


class MigrationsMissing(RuntimeError):
    """Neither a checkout nor the installed package carries the migrations."""


def migrations_root() -> Path:
    """The folder holding ``alembic.ini`` and ``migrations/``: the checkout when run from
    one, else ``<prefix>/share/atiende`` where the wheel installs them (data files)."""
    candidates = [REPO_ROOT]
    for prefix in (sysconfig.get_path("data"), sys.prefix, sys.base_prefix):
        candidates.append(Path(prefix) / "share" / "atiende")
    for root in candidates:
        if (root / "alembic.ini").is_file() and (root / "migrations" / "env.py").is_file():
            return root
    looked = ", ".join(str(c) for c in candidates)
    raise MigrationsMissing(f"alembic.ini and migrations/ not found (looked in {looked}); "
                            "reinstall the atiende package")

# What the driver raises (connection lost, pool timeout, a failed statement), and its
# connection type, for modules that run SQL without importing the driver.
DatabaseError = psycopg.Error
DriverConnection: TypeAlias = psycopg.AsyncConnection[Any]


def sqlalchemy_url(url: str) -> str:
    """``postgresql://…`` → ``postgresql+psycopg://…`` (psycopg 3, sync or async)."""
    for prefix in ("postgresql+psycopg://", "postgresql+asyncpg://", "postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


def libpq_url(url: str) -> str:
    """The plain libpq form (``postgresql://…``) that psycopg and procrastinate take."""
    return "postgresql://" + sqlalchemy_url(url).removeprefix("postgresql+psycopg://")


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def driver_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under ``session``'s transaction (to defer jobs inside it)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
    return driver


class AutocommitPool:
    """Pooled psycopg connections in autocommit mode for the hot paths whose work is one
    statement each (ingest, the worker's reads and run commits): no BEGIN/COMMIT round
    trips and none of the ORM's per-checkout cost (~0.25 ms of CPU per use)."""

    def __init__(self, url: str, *, max_size: int, timeout_seconds: float = 10.0) -> None:
        self._pool = AsyncConnectionPool(
            libpq_url(url), kwargs={"autocommit": True}, min_size=1, max_size=max_size,
            timeout=timeout_seconds, open=False, name="atiende-autocommit",
        )

    async def open(self) -> None:
        await self._pool.open()

    async def close(self) -> None:
        await self._pool.close()

    def connection(self) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """A connection for one statement (or a few), returned to the pool after."""
        return self._pool.connection()


async def notifications(url: str, channel: str) -> AsyncIterator[None]:
    """LISTEN on ``channel`` with a connection of its own: yields once when listening
    starts (anything sent before was missed), then once per notification. Raises
    :data:`DatabaseError` when the connection is lost."""
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        await conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))
        yield
        async for _ in conn.notifies():
            yield


def migrate(url: str) -> None:
    """Apply every migration (all branches) to the database at ``url``."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(migrations_root() / "alembic.ini"))
    config.attributes["url"] = url
    command.upgrade(config, "heads")


# deadlock_detected, lock_not_available (lock_timeout), serialization_failure
_RETRYABLE_STATES = frozenset({"40P01", "55P03", "40001"})


def is_retryable(exc: BaseException) -> bool:
    """A transaction that failed only because of a concurrent one (deadlock, lock
    timeout, serialization): running it again can succeed."""
    for candidate in (exc, getattr(exc, "orig", None), exc.__cause__):
        if getattr(candidate, "sqlstate", None) in _RETRYABLE_STATES:
            return True
    return False
