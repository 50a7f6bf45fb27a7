"""Proof: our own OpenAPI schema fuzzed with schemathesis, and malformed bodies at the
inbound endpoints: never a 5xx, never a response that breaks the schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from bot.wiring.runtime import Runtime
from handoff.roles import Role
from tests.ops.proof import FULL, LiveServer

CHECKS = ",".join(
    [
        "not_a_server_error",
        "response_schema_conformance",
        "content_type_conformance",
        "response_headers_conformance",
    ]
)


@pytest.fixture
async def live(
    runtime: Runtime, database_url: str, redis_url: str, tmp_path: Path
) -> object:
    server = LiveServer(database_url, redis_url, tmp_path)
    server.start()
    yield server
    server.stop()


async def _admin_token(runtime: Runtime, server: LiveServer) -> str:
    await runtime.auth.create_user(
        email="fuzz-admin@example.mx", name="Fuzz", role=Role.ADMIN, password="contraseña-segura"
    )
    async with httpx.AsyncClient(base_url=server.url) as c:
        r = await c.post(
            "/api/v1/auth/login",
            json={"email": "fuzz-admin@example.mx", "password": "contraseña-segura"},
        )
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


async def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    runtime: Runtime, live: LiveServer, tmp_path: Path, figures: list[str]
) -> None:
    token = await _admin_token(runtime, live)
    report = tmp_path / "st"
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{live.url}/openapi.json",
        "--checks", CHECKS,
        "--header", f"Authorization: Bearer {token}",
        # logging out would revoke the token the rest of the run uses
        "--exclude-path", "/api/v1/auth/logout",
        # a server-sent-events stream never ends (its text/event-stream type is declared:
        # test_event_streams_declare_their_media_type)
        "--exclude-path", "/api/v1/inbox/stream",
        # changing the admin's own password revokes the token the rest of the run uses
        "--exclude-path", "/api/v1/auth/password",
        # a subscription resolves its URL's host name (DNS) and would post to it: no test
        # sends traffic beyond 127.0.0.1 (tests/prod/test_webhooks.py covers this route)
        "--exclude-path", "/api/v1/webhooks",
        "--max-examples", "60" if FULL else "12",
        "--phases", "examples,coverage,fuzzing",
        "--workers", "2",
        "--request-timeout", "30",
        "--seed", "8",
        "--suppress-health-check", "all",
        "--report", "junit", "--report-dir", str(report),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=540, cwd=tmp_path)
    failures = run.stdout.split("FAILURES", 1)[-1].split("SUMMARY", 1)[0]
    summary = failures[:6000] + run.stdout[-1500:]
    assert run.returncode == 0, summary
    tail = [line for line in run.stdout.splitlines() if "passed" in line or "operations" in line]
    figures.append(f"schemathesis: exit 0, {' | '.join(t.strip() for t in tail[-3:])}")


MALFORMED: list[tuple[str, bytes]] = [
    ("application/json", b"{"),
    ("application/json", b"null"),
    ("application/json", b"[]"),
    ("application/json", b'"hola"'),
    ("application/json", b"{}"),
    ("application/json", b'{"from": null, "text": null}'),
    ("application/json", b'{"from": 5215512345678, "text": ["hola"]}'),
    ("application/json", b'{"from": "+5215512345678", "text": "   "}'),
    ("application/json", b'{"from": "no es un numero", "text": "hola"}'),
    ("application/json", b'{"from": "+5215512345678", "text": "hola", "extra": 1}'),
    ("application/json", b'{"from": "+5215512345678", "text": "' + b"a" * 5000 + b'"}'),
    ("application/json", b'{"from": "+5215512345678", "text": "\\ud800"}'),
    ("application/json", b'{"from": "+5215512345678", "text": "hola", "message_id": ""}'),
    ("application/json", b"\xff\xfe\x00garbage"),
    ("application/json", json.dumps({"a": [[[[[[[[[[[[]]]]]]]]]]]]}).encode()),
    ("text/plain", b"from=+5215512345678&text=hola"),
    ("application/x-www-form-urlencoded", b"from=%2B5215512345678&text=hola"),
    ("application/json", b"{\"from\": \"+5215512345678\", \"text\": \"hola\"" + b" " * 10),
]


async def test_malformed_bodies_at_inbound_endpoints_get_4xx_and_store_nothing(
    live: LiveServer, database_url: str, figures: list[str]
) -> None:
    targets = ["/api/v1/simulator/messages"]
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as c:
        paths = (await c.get("/openapi.json")).json()["paths"]
        targets += [p for p in ("/webhooks/whatsapp-cloud",) if p in paths]
        statuses: dict[int, int] = {}
        for path in targets:
            for content_type, body in MALFORMED:
                r = await c.post(path, content=body, headers={"content-type": content_type})
                assert 400 <= r.status_code < 500, (path, body[:60], r.status_code, r.text)
                assert r.json()["detail"], "a 4xx must say why"
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert (await c.get("/healthz")).status_code == 200  # still serving
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT count(*) FROM messages").fetchone()
    assert stored == (0,)
    figures.append(
        f"malformed bodies: {len(MALFORMED)} bodies x {targets} -> statuses {statuses}, "
        f"0 stored, server healthy"
    )


async def test_domain_422s_have_the_documented_shape(live: LiveServer) -> None:
    """Found by schemathesis: a bad phone or empty text answered 422 with a bare string,
    while the schema promises FastAPI's ``HTTPValidationError`` (a list of errors)."""
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as c:
        for body, reason in (
            ({"from": "000000000000000000000", "text": "hola"}, "invalid phone number"),
            ({"from": "+5215512345678", "text": "   "}, "text must not be empty"),
        ):
            r = await c.post("/api/v1/simulator/messages", json=body)
            assert r.status_code == 422
            detail = r.json()["detail"]
            assert isinstance(detail, list) and reason in detail[0]["msg"], detail
            assert set(detail[0]) >= {"loc", "msg", "type"}


async def test_event_streams_declare_their_media_type(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    streams = {
        path: op["responses"]["200"]["content"]
        for path, item in schema["paths"].items()
        for op in item.values()
        if "stream" in path and isinstance(op, dict) and "responses" in op
    }
    assert "/api/v1/inbox/stream" in streams
    for path, content in streams.items():
        assert list(content) == ["text/event-stream"], path
