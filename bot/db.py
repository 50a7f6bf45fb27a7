"""Database engine, sessions and migrations (SQLAlchemy 2 async on psycopg 3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


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


@asynccontextmanager
async def autocommit_connection(engine: AsyncEngine) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A pooled psycopg connection in autocommit mode, for hot paths whose work is one
    statement (atomic on its own: no BEGIN/COMMIT round trips)."""
    async with engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        raw = await connection.get_raw_connection()
        driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
        yield driver


def migrate(url: str) -> None:
    """Apply every migration (all branches) to the database at ``url``."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.attributes["url"] = url
    command.upgrade(config, "heads")
