"""Outgoing webhooks: signed deliveries of the four events, retries with backoff by the job
queue, the delivery log and replay, and where a webhook may point (refused before any
connection in production)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from bot.errors import WebhookTargetRefused
from bot.integrations.targets import check_target
from bot.integrations.webhooks import WebhookService
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.roles import Role
from knowledge.embeddings import Embedder
from tests.conftest import app_client, ask
from tests.prod.receiver import Receiver

SECRET = "s3cr3t-del-receptor"
EVENTS = ["message.created", "conversation.escalated", "conversation.claimed",
          "conversation.resolved"]


def hook_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        env="test", data_dir=tmp_path, stalled_job_seconds=2, reconcile_interval_seconds=0.5,
        job_retry_base_seconds=1, worker_concurrency=4, log_level="WARNING",
        webhooks_retry_base_seconds=1, webhooks_max_attempts=3, webhooks_timeout_seconds=0.5,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def hooks(
    tmp_path: Path, database_url: str, redis_url: str, kb_embedder: Embedder
) -> AsyncIterator[Callable[..., Any]]:
    """``await hooks(**settings)`` → (runtime, client, admin headers); closed at the end."""
    opened: list[tuple[Runtime, Any]] = []

    async def make(**overrides: Any) -> tuple[Runtime, httpx.AsyncClient, dict[str, str]]:
        rt = await Runtime.create(hook_settings(tmp_path, **overrides), database_url=database_url,
                                  redis_url=redis_url, embedder=kb_embedder)
        rt.start_worker()
        cm = app_client(rt)
        client = await cm.__aenter__()
        opened.append((rt, cm))
        key = await rt.api_keys.create(name=f"admin-{uuid.uuid4().hex[:6]}", role=Role.ADMIN,
                                       created_by="tests")
        return rt, client, {"Authorization": f"Bearer {key.key}"}

    yield make
    for rt, cm in reversed(opened):
        await cm.__aexit__(None, None, None)
        await rt.close()


async def wait_for(predicate: Callable[[], Any], timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.1)


def verify(secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


async def test_events_are_delivered_signed(
    hooks: Callable[..., Any], receiver: Receiver, auth_headers: Any
) -> None:
    runtime, client, admin = await hooks()
    created = await client.post("/api/v1/webhooks", headers=admin,
                                json={"url": receiver.url, "events": EVENTS, "secret": SECRET})
    assert created.status_code == 201, created.text
    hook_id = created.json()["id"]

    # a question the bot answers: the customer's message and the reply
    greeting = await ask(client, "hola", phone="+5215512340001")
    # a customer asks for a person: escalated; an agent claims, then resolves
    handed = await ask(client, "quiero hablar con un asesor", phone="+5215512340001")
    assert handed["owner"] == "queued"
    conversation = handed["conversation_id"]
    agent = await auth_headers("supervisor")
    assert (await client.post(f"/api/v1/conversations/{conversation}/claim",
                              headers=agent)).status_code == 200
    assert (await client.post(f"/api/v1/conversations/{conversation}/resolve",
                              headers=agent)).status_code == 200

    def events() -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in receiver.requests]

    async def all_in() -> bool:
        seen = {e["event"] for e in events()}
        return {"conversation.escalated", "conversation.claimed",
                "conversation.resolved"} <= seen
    await wait_for(all_in)
    for request in receiver.requests:
        assert verify(SECRET, request.body, request.headers["X-Atiende-Signature-256"])
        assert request.headers["content-type"] == "application/json"
    got = events()
    assert all(e["conversation_id"] == conversation for e in got)
    messages = [e["message"] for e in got if e["event"] == "message.created"]
    # deliveries run in parallel: receivers order by created_at, not by arrival
    assert any(m["direction"] == "in" and m["text"] == "hola" and m["author"] == "customer"
               for m in messages)
    assert any(m["direction"] == "out" and m["in_reply_to"] == greeting["message_id"]
               for m in messages)
    claimed = next(e for e in got if e["event"] == "conversation.claimed")
    assert claimed["conversation"]["owner"] == "human"
    assert claimed["conversation"]["previous_owner"] == "queued"

    log = (await client.get(f"/api/v1/webhooks/{hook_id}/deliveries?limit=500",
                            headers=admin)).json()
    assert log and {d["status"] for d in log} == {"delivered"}
    assert all(d["attempts"] == 1 and d["last_status_code"] == 200 for d in log)
    # agents may not subscribe or read the log
    assert (await client.get("/api/v1/webhooks", headers=agent)).status_code == 403


async def test_failures_are_retried_with_backoff_then_logged_and_replayable(
    hooks: Callable[..., Any], receiver: Receiver
) -> None:
    runtime, client, admin = await hooks()
    hook = (await client.post("/api/v1/webhooks", headers=admin, json={
        "url": receiver.url, "events": ["conversation.escalated"], "secret": SECRET,
    })).json()
    log_path = f"/api/v1/webhooks/{hook['id']}/deliveries"

    # 500, then 200: delivered on the second attempt
    receiver.script.extend([(500, {}, 0.0)])
    await ask(client, "quiero hablar con un asesor", phone="+5215512340002")

    async def delivered() -> bool:
        log = (await client.get(log_path, headers=admin)).json()
        return bool(log) and log[0]["status"] == "delivered"
    await wait_for(delivered)
    first = (await client.get(log_path, headers=admin)).json()[0]
    assert first["attempts"] == 2 and len(receiver.requests) == 2

    # hangs past the timeout on every attempt: failed after 3, with the reason kept
    receiver.script.extend([(200, {}, 1.5)] * 3)
    await ask(client, "quiero hablar con un asesor", phone="+5215512340003")

    async def failed() -> bool:
        log = (await client.get(f"{log_path}?status=failed", headers=admin)).json()
        return bool(log)
    await wait_for(failed, timeout=40)
    gave_up = (await client.get(f"{log_path}?status=failed", headers=admin)).json()[0]
    assert gave_up["attempts"] == 3 and "Timeout" in gave_up["last_error"]

    # the receiver is fixed: an admin replays it, it is delivered once more
    replayed = await client.post(f"/api/v1/webhooks/deliveries/{gave_up['id']}/replay",
                                 headers=admin)
    assert replayed.status_code == 200

    async def replay_done() -> bool:
        log = (await client.get(log_path, headers=admin)).json()
        return next(d for d in log if d["id"] == gave_up["id"])["status"] == "delivered"
    await wait_for(replay_done)
    assert (await client.post("/api/v1/webhooks/deliveries/999999/replay",
                              headers=admin)).status_code == 404


async def test_a_redirect_is_not_followed(
    hooks: Callable[..., Any], receiver: Receiver
) -> None:
    runtime, client, admin = await hooks()
    hook = (await client.post("/api/v1/webhooks", headers=admin, json={
        "url": receiver.url, "events": ["conversation.escalated"], "secret": SECRET,
    })).json()
    receiver.script.append((302, {"location": "http://10.0.0.7/internal"}, 0.0))
    await ask(client, "quiero hablar con un asesor", phone="+5215512340004")
    log_path = f"/api/v1/webhooks/{hook['id']}/deliveries?status=failed"

    async def failed() -> bool:
        return bool((await client.get(log_path, headers=admin)).json())
    await wait_for(failed)
    delivery = (await client.get(log_path, headers=admin)).json()[0]
    assert delivery["attempts"] == 1 and delivery["last_status_code"] == 302
    assert "not followed" in delivery["last_error"] and "10.0.0.7" in delivery["last_error"]
    assert len(receiver.requests) == 1  # only our receiver on 127.0.0.1 was ever called


async def test_production_refuses_loopback_and_private_targets_before_connecting(
    hooks: Callable[..., Any], receiver: Receiver
) -> None:
    runtime, client, admin = await hooks(
        env="production", secret_key="x" * 40, database_url="postgresql://unused",
        redis_url="redis://unused", simulator=True,
    )
    client.headers.update(admin)  # the simulator wants a staff login in production
    for url in (receiver.url, f"http://localhost:{receiver.port}/x", "http://10.1.2.3/hook",
                "http://[::1]:9/x", "http://169.254.169.254/latest/meta-data",
                "ftp://example.org/x"):
        refused = await client.post("/api/v1/webhooks", headers=admin,
                                    json={"url": url, "events": EVENTS, "secret": SECRET})
        assert refused.status_code == 422, (url, refused.text)
        assert "webhook refused" in refused.json()["detail"][0]["msg"]
    assert receiver.requests == []
    assert (await client.get("/api/v1/webhooks", headers=admin)).json() == []

    # a subscription made before (or a name that now resolves to a private address) is
    # refused at delivery time too, without a connection
    async with runtime.sessions() as s, s.begin():
        await s.execute(text(
            "INSERT INTO webhooks (id, url, events, secret) VALUES (:id, :url, :ev, :secret)"
        ), {"id": uuid.uuid4(), "url": receiver.url, "ev": json.dumps(EVENTS),
            "secret": runtime.webhooks._box.seal(SECRET)})
    await ask(client, "hola", phone="+5215512340005")

    async def refused_logged() -> bool:
        async with runtime.sessions() as s:
            rows = (await s.execute(text(
                "SELECT status, last_error FROM webhook_deliveries"))).all()
        return bool(rows) and all(r.status == "failed" for r in rows)
    await wait_for(refused_logged)
    assert receiver.requests == []


async def test_names_are_resolved_and_refused_by_address(database_url: str) -> None:
    """DNS decides: a public-looking name that resolves to a private address is refused,
    and nothing is connected to (the resolver is the only thing asked)."""
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return {"hooks.example.com": ["10.0.0.5"], "api.example.org": ["93.184.215.14"],
                "mapped.example.net": ["::ffff:127.0.0.1"]}[host]

    for url in ("https://hooks.example.com/x", "http://mapped.example.net/x"):
        with pytest.raises(WebhookTargetRefused, match="refused in production"):
            await check_target(url, allow_private=False, resolve=resolver)
    target = await check_target("https://api.example.org/in", allow_private=False,
                                resolve=resolver)
    assert target.connect_url == "https://93.184.215.14:443/in" and target.host == "api.example.org"
    allowed = await check_target("https://hooks.example.com/x", allow_private=True,
                                 resolve=resolver)
    assert allowed.address == "10.0.0.5"
    assert asked == ["hooks.example.com", "mapped.example.net", "api.example.org",
                     "hooks.example.com"]
    assert WebhookService  # the service uses the same check at delivery time


async def test_allow_private_lets_production_reach_an_internal_receiver(
    hooks: Callable[..., Any], receiver: Receiver
) -> None:
    runtime, client, admin = await hooks(
        env="production", secret_key="x" * 40, database_url="postgresql://unused",
        redis_url="redis://unused", webhooks_allow_private=True,
    )
    created = await client.post("/api/v1/webhooks", headers=admin, json={
        "url": receiver.url, "events": ["message.created"], "secret": SECRET})
    assert created.status_code == 201
    bad = await client.post("/api/v1/webhooks", headers=admin, json={
        "url": receiver.url, "events": ["message.deleted"], "secret": SECRET})
    assert bad.status_code == 422 and "unknown" in bad.text
