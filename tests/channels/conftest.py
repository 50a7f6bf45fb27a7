"""Fixtures for the channel tests: a fake Graph API and a runtime wired to it."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

import bot.channels.neonize_adapter  # noqa: F401  (imports neonize quietly, first)
from bot.settings import Settings, WhatsAppCloudSettings
from bot.wiring.runtime import Runtime
from tests.channels.fake_graph import FakeGraph
from tests.channels.real_store import RealStore, provisioned_store
from tests.conftest import app_client

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "verify-me"
PHONE_NUMBER_ID = "106540352242922"
BUSINESS_PHONE = "15550783881"


@pytest.fixture
async def real_store(database_url: str) -> AsyncIterator[RealStore]:
    async with provisioned_store(database_url) as store:
        yield store


@pytest.fixture
def password_auth(real_store: RealStore, pg_admin_url: str) -> Iterator[str]:
    """The embedded server trusts local users; for this test the store role must give its
    password (a line for that role only, removed afterwards)."""
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        row = conn.execute("SHOW hba_file").fetchone()
        assert row is not None
        hba = Path(str(row[0]))
        original = hba.read_text()
        hba.write_text(f"local all {real_store.role} scram-sha-256\n{original}")
        conn.execute("SELECT pg_reload_conf()")
    try:
        url = real_store.host("+525511110000").store
        wrong = url.replace(f"{real_store.role}:", f"{real_store.role}:x", 1)
        for _ in range(50):  # the server rereads the file a moment after the reload
            try:
                psycopg.connect(wrong).close()
            except psycopg.OperationalError:
                break
            time.sleep(0.1)
        yield real_store.role
    finally:
        hba.write_text(original)
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")


@pytest.fixture
def fake_graph() -> Iterator[FakeGraph]:
    graph = FakeGraph()
    graph.start()
    yield graph
    graph.stop()


@pytest.fixture
def cloud_settings(tmp_path: Path, fake_graph: FakeGraph) -> Settings:
    return Settings(
        env="test", data_dir=tmp_path, stalled_job_seconds=2, reconcile_interval_seconds=0.5,
        job_retry_base_seconds=1, worker_concurrency=4, log_level="WARNING",
        whatsapp_cloud=WhatsAppCloudSettings(
            verify_token=VERIFY_TOKEN, app_secret=APP_SECRET, access_token="EAAG-test-token",
            phone_number_id=PHONE_NUMBER_ID, graph_url=fake_graph.url,
        ),
    )


@pytest.fixture
async def cloud_runtime(
    cloud_settings: Settings, database_url: str, redis_url: str
) -> AsyncIterator[Runtime]:
    rt = await Runtime.create(cloud_settings, database_url=database_url, redis_url=redis_url)
    rt.start_worker()
    yield rt
    await rt.close()


@pytest.fixture
async def cloud_client(cloud_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(cloud_runtime) as c:
        yield c


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(
    *, messages: list[dict[str, Any]] | None = None, statuses: list[dict[str, Any]] | None = None,
    name: str = "Lupita Hernández", wa_id: str = "5215512345678",
) -> dict[str, Any]:
    """Meta's documented webhook envelope (Webhooks reference, ``messages`` field)."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": BUSINESS_PHONE, "phone_number_id": PHONE_NUMBER_ID},
    }
    if messages is not None:
        value["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id}]
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def text_message(body: str, wamid: str, *, wa_id: str = "5215512345678") -> dict[str, Any]:
    return {"from": wa_id, "id": wamid, "timestamp": "1749416383", "type": "text",
            "text": {"body": body}}


async def post_signed(client: httpx.AsyncClient, payload: Any) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return await client.post(
        "/webhooks/whatsapp-cloud", content=body,
        headers={"X-Hub-Signature-256": sign(body), "content-type": "application/json"},
    )
