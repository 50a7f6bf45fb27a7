from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import create_engine, session_factory
from bot.llm.scripted import Behaviour, ScriptedServer


@pytest.fixture
def provider() -> Iterator[ScriptedServer]:
    """An OpenAI-compatible server on 127.0.0.1: /v1/embeddings answers hashed bags of words."""
    with ScriptedServer(default=Behaviour.answer("ok"), embedding_dimensions=64) as server:
        yield server


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url, pool_size=2)
    yield session_factory(engine)
    await engine.dispose()
