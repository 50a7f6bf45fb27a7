"""Fixtures for sequence tests: a runtime on a fake clock whose periodic tick and detector
are off (the tests run them when the clock says so), and an API client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bot.clock import FakeClock
from bot.settings import Settings
from bot.settings.sequences import BlockingConfig, SequencesConfig
from bot.wiring.runtime import Runtime
from knowledge.embeddings import Embedder
from tests.conftest import app_client


@pytest.fixture
def fake_clock() -> FakeClock:
    # starts at the real now: rows the database stamps itself stay close to it
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def manual_settings(tmp_path: Path) -> Settings:
    return Settings(
        env="test", data_dir=tmp_path, stalled_job_seconds=2, reconcile_interval_seconds=0.5,
        job_retry_base_seconds=1, worker_concurrency=4, log_level="WARNING",
        sequences=SequencesConfig(tick_seconds=0),
        blocking=BlockingConfig(check_seconds=0, channels=("simulator",)),
    )


@pytest.fixture
async def rt(
    manual_settings: Settings, database_url: str, redis_url: str, kb_embedder: Embedder,
    fake_clock: FakeClock,
) -> AsyncIterator[Runtime]:
    runtime = await Runtime.create(manual_settings, database_url=database_url,
                                   redis_url=redis_url, embedder=kb_embedder, clock=fake_clock)
    runtime.start_worker()
    yield runtime
    await runtime.close()


@pytest.fixture
async def api(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(rt) as c:
        yield c


@pytest.fixture
async def headers(rt: Runtime, api: httpx.AsyncClient):  # type: ignore[no-untyped-def]
    """``await headers("admin")`` → a bearer token of a new user with that role."""
    import uuid

    from handoff.roles import Role

    async def make(role: str = "admin") -> dict[str, str]:
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.mx"
        await rt.auth.create_user(email=email, name=f"Test {role}", role=Role(role),
                                  password="contraseña-segura")
        response = await api.post("/api/v1/auth/login",
                                  json={"email": email, "password": "contraseña-segura"})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return make
