"""Shared fixtures: real PostgreSQL (pgvector) and real Redis, started by the tests.

One embedded PostgreSQL and one redis-server serve the whole session. Migrations
run once into a template database; every test that needs the database gets a
fresh copy of it (CREATE DATABASE … TEMPLATE), and a flushed Redis.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Every test builds a Runtime: loading Whisper in each would cost seconds; voice tests share one.
os.environ.setdefault("ATIENDE_SPEECH__WARM_AT_START", "false")
# ... nor the answering models in each (most tests never ask a question; loading them on a
# thread lags the event loop of timing tests): tests/test_worker_warm.py turns it on.
os.environ.setdefault("ATIENDE_KNOWLEDGE__WARM_AT_START", "false")
# A test decides the same on a busy machine: the load shortcuts (the second model skipped
# behind a backlog) are off, and tested on their own (tests/knowledge/test_cascade.py).
os.environ.setdefault("ATIENDE_KNOWLEDGE__SECOND_MODEL_MAX_WAIT", "0")
os.environ.setdefault("ATIENDE_KNOWLEDGE__SECOND_MODEL_QUEUE", "0")

from bot.api import create_app  # noqa: E402
from bot.clock import FakeClock  # noqa: E402
from bot.db import migrate  # noqa: E402
from bot.infra.embedded import EmbeddedServices  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.wiring.runtime import Runtime  # noqa: E402
from knowledge.embeddings import Embedder  # noqa: E402

TEMPLATE = "atiende_template"


@pytest.fixture(scope="session")
def services() -> Iterator[EmbeddedServices]:
    root = Path(tempfile.mkdtemp(prefix="atiende-test-"))
    embedded = EmbeddedServices(root, ephemeral=True)
    embedded.start()
    yield embedded
    embedded.stop()


@pytest.fixture(scope="session")
def pg_admin_url(services: EmbeddedServices) -> str:
    base = services.postgres.start()
    host = base.split("host=", 1)[1]
    admin = f"postgresql://postgres@/postgres?host={host}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    migrate(f"postgresql://postgres@/{TEMPLATE}?host={host}")
    return admin


def make_database(admin_url: str) -> str:
    """A fresh, migrated database copied from the template."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    host = admin_url.split("host=", 1)[1]
    return f"postgresql://postgres@/{name}?host={host}"


@pytest.fixture
def database_url(pg_admin_url: str) -> Iterator[str]:
    url = make_database(pg_admin_url)
    yield url
    name = url.split("/")[3].split("?")[0]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url(services: EmbeddedServices) -> str:
    import redis

    client = redis.Redis(unix_socket_path=str(services.redis.socket))
    client.flushall()
    client.close()
    return services.redis.url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        data_dir=tmp_path,
        stalled_job_seconds=2,
        reconcile_interval_seconds=0.5,
        job_retry_base_seconds=1,
        worker_concurrency=4,
        log_level="WARNING",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def kb_embedder() -> Embedder:
    """One USE model for the whole session (it loads lazily, ~2 s, on first use)."""
    from knowledge.usem import UsemEmbedder

    return UsemEmbedder(threads=1)


@pytest.fixture(scope="session")
def kb_second() -> Embedder:
    """One e5 model for the whole session (its passage vectors are cached across tests)."""
    from knowledge.e5 import E5Embedder

    return E5Embedder()


@pytest.fixture
async def runtime(
    settings: Settings, database_url: str, redis_url: str, kb_embedder: Embedder,
    kb_second: Embedder,
) -> AsyncIterator[Runtime]:
    rt = await Runtime.create(
        settings, database_url=database_url, redis_url=redis_url, embedder=kb_embedder,
        second_embedder=kb_second,
    )
    rt.start_worker()
    yield rt
    await rt.close()


@asynccontextmanager
async def app_client(runtime: Runtime, **options: object) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the app (in process) serving ``runtime``; its worker runs apart."""

    async def factory() -> Runtime:
        return runtime

    api = create_app(factory, run_worker=False)
    api.state.runtime = runtime
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://atiende.test", **options  # type: ignore[arg-type]
    ) as c:
        # one simulator session for the whole client, as a browser has after its first
        # request (concurrent first requests would otherwise each be given their own)
        c.cookies.set("atiende_sim", f"test-session-{uuid.uuid4().hex}")
        yield c


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(runtime) as c:
        yield c


async def ask(
    client: httpx.AsyncClient, text: str, *, phone: str = "+5215512345678",
    name: str | None = None, message_id: str | None = None, wait: float = 10,
) -> dict[str, object]:
    """Send one simulated customer message and wait for its outcome."""
    body: dict[str, object] = {"from": phone, "text": text}
    if name:
        body["name"] = name
    if message_id:
        body["message_id"] = message_id
    accepted = await client.post("/api/v1/simulator/messages", json=body)
    assert accepted.status_code == 202, accepted.text
    outcome = await client.get(
        f"/api/v1/simulator/messages/{accepted.json()['message_id']}", params={"wait": wait}
    )
    assert outcome.status_code == 200, outcome.text
    data: dict[str, object] = outcome.json()
    data["duplicate"] = accepted.json()["duplicate"]
    return data


@pytest.fixture
async def auth_headers(runtime: Runtime, client: httpx.AsyncClient):  # type: ignore[no-untyped-def]
    """``await auth_headers("admin")`` → headers with a bearer token of a new user."""
    from handoff.roles import Role

    async def make(role: str = "admin", *, email: str | None = None) -> dict[str, str]:
        address = email or f"{role}-{uuid.uuid4().hex[:8]}@example.mx"
        await runtime.auth.create_user(
            email=address, name=f"Test {role}", role=Role(role), password="contraseña-segura"
        )
        response = await client.post(
            "/api/v1/auth/login", json={"email": address, "password": "contraseña-segura"}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return make


async def staff_outcome(
    client: httpx.AsyncClient, runtime: Runtime, message_id: object, *, wait: float = 20
) -> httpx.Response:
    """The simulator outcome of a message the test stored itself (not through the
    simulator's POST): only staff may read those, so ask with a supervisor's API key."""
    from handoff.roles import Role

    key = await runtime.api_keys.create(
        name=f"test-{uuid.uuid4().hex[:8]}", role=Role.SUPERVISOR, created_by="tests"
    )
    return await client.get(
        f"/api/v1/simulator/messages/{message_id}", params={"wait": wait},
        headers={"Authorization": f"Bearer {key.key}"},
    )
