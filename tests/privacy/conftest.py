"""Fixtures of the customer-data tests: a runtime on the Cloud API channel (fake Graph
server), media on the real S3 server (moto), a webhook receiver, an admin."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bot.settings import Settings, WhatsAppCloudSettings
from bot.settings.media import MediaSettings
from bot.settings.privacy import PrivacySettings
from bot.wiring.runtime import Runtime
from knowledge.embeddings import Embedder
from tests.channels.conftest import APP_SECRET, PHONE_NUMBER_ID, VERIFY_TOKEN
from tests.channels.fake_graph import FakeGraph
from tests.conftest import app_client
from tests.prod.receiver import Receiver


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def fake_graph() -> Iterator[FakeGraph]:
    graph = FakeGraph()
    graph.start()
    yield graph
    graph.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def s3_media(endpoint: str) -> MediaSettings:
    return MediaSettings(
        backend="s3", s3_endpoint_url=endpoint, s3_bucket=f"privacy-{uuid.uuid4().hex[:10]}",
        s3_access_key_id="test", s3_secret_access_key="test", s3_create_bucket=True,
    )


@pytest.fixture
def privacy_settings(tmp_path: Path, fake_graph: FakeGraph, s3_endpoint: str) -> Settings:
    return Settings(
        env="test", data_dir=tmp_path, stalled_job_seconds=2, reconcile_interval_seconds=0.5,
        job_retry_base_seconds=1, worker_concurrency=4, log_level="WARNING",
        whatsapp_cloud=WhatsAppCloudSettings(
            verify_token=VERIFY_TOKEN, app_secret=APP_SECRET, access_token="EAAG-test-token",
            phone_number_id=PHONE_NUMBER_ID, graph_url=fake_graph.url,
        ),
        media=s3_media(s3_endpoint),
        privacy=PrivacySettings(settle_seconds=0),
    )


@pytest.fixture
async def cloud_runtime(
    privacy_settings: Settings, database_url: str, redis_url: str, kb_embedder: Embedder
) -> AsyncIterator[Runtime]:
    rt = await Runtime.create(privacy_settings, database_url=database_url, redis_url=redis_url,
                              embedder=kb_embedder)
    rt.start_worker()
    yield rt
    await rt.close()


@pytest.fixture
async def cloud_client(cloud_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(cloud_runtime) as c:
        yield c


async def staff_headers(
    runtime: Runtime, client: httpx.AsyncClient, role: str = "admin"
) -> dict[str, str]:
    from handoff.roles import Role

    email = f"{role}-{uuid.uuid4().hex[:8]}@example.mx"
    await runtime.auth.create_user(email=email, name=f"Test {role}", role=Role(role),
                                   password="contraseña-segura")
    response = await client.post("/api/v1/auth/login",
                                 json={"email": email, "password": "contraseña-segura"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
