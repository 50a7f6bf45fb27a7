"""Handoff fixtures: always-open business hours (unless a test fixes a clock), staff helpers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.api import create_app
from bot.clock import Clock
from bot.settings import Settings
from bot.settings.security import SecuritySettings
from bot.wiring.runtime import Runtime
from handoff.auth import Principal
from handoff.config import HandoffConfig
from handoff.roles import Role

PASSWORD = "contraseña-segura"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        env="test", data_dir=tmp_path, stalled_job_seconds=2, reconcile_interval_seconds=0.5,
        job_retry_base_seconds=1, worker_concurrency=4, log_level="WARNING",
        handoff=HandoffConfig(hours=""),
        # the fake clocks here jump hours ahead between a login and its next use
        security=SecuritySettings(session_idle_minutes=0),
    )


@dataclass(frozen=True)
class Staff:
    principal: Principal
    headers: dict[str, str]

    @property
    def id(self) -> uuid.UUID:
        return self.principal.id


StaffFactory = Callable[..., Awaitable[Staff]]


def staff_factory(runtime: Runtime, client: httpx.AsyncClient) -> StaffFactory:
    async def make(role: str = "agent", name: str | None = None) -> Staff:
        email = f"{role}-{uuid.uuid4().hex[:8]}@seguros.mx"
        principal = await runtime.auth.create_user(
            email=email, name=name or f"{role.title()} {email[:12]}", role=Role(role),
            password=PASSWORD,
        )
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return Staff(principal, {"Authorization": f"Bearer {response.json()['access_token']}"})

    return make


@pytest.fixture
def staff(runtime: Runtime, client: httpx.AsyncClient) -> StaffFactory:
    """``await staff("agent")`` → a logged-in staff member (principal + headers)."""
    return staff_factory(runtime, client)


async def client_for(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async def factory() -> Runtime:
        return runtime

    api = create_app(factory, run_worker=False)
    api.state.runtime = runtime
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api), base_url="http://atiende.test"
    ) as c:
        yield c


@asynccontextmanager
async def custom_runtime(
    settings: Settings, database_url: str, redis_url: str, *, clock: Clock | None = None,
    **handoff: Any,
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient, StaffFactory]]:
    """A runtime with other handoff settings (and optionally a fixed clock)."""
    config = settings.handoff.model_copy(update=handoff)
    custom = settings.model_copy(update={"handoff": config})
    rt = await Runtime.create(custom, database_url=database_url, redis_url=redis_url,
                              **({"clock": clock} if clock else {}))
    rt.start_worker()
    try:
        async for c in client_for(rt):
            yield rt, c, staff_factory(rt, c)
    finally:
        await rt.close()
