"""The HTTP edge: bodies refused before they are read (413), NUL bytes (422, nothing of
the text logged), security headers, /metrics and /docs limitable."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from bot.settings import Settings
from bot.settings.security import SecuritySettings
from bot.wiring.runtime import Runtime
from tests.conftest import app_client
from tests.security.conftest import World, serve


async def _raw(base: str, head: bytes, chunks: list[bytes] | None = None) -> bytes:
    """Send ``head`` (and maybe some chunks) on a raw socket; the first answer line."""
    parts = urlsplit(base)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head)
        for chunk in chunks or []:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            if reader.at_eof():
                break
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()


async def test_a_huge_webhook_body_is_refused_before_it_is_read(runtime: Runtime) -> None:
    async with serve(runtime) as base:
        first = await _raw(base, b"POST /webhooks/whatsapp-cloud HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Type: application/json\r\nContent-Length: 200000000\r\n\r\n"
                           + b"{" * 1000)
        assert b" 413 " in first, first


async def test_a_streamed_upload_is_cut_off_at_its_limit(
    runtime: Runtime, world: World
) -> None:
    token = world.admin.headers["Authorization"]
    boundary = b"xyzzy"
    preamble = (b"--xyzzy\r\nContent-Disposition: form-data; name=\"files\"; "
                b"filename=\"a.md\"\r\nContent-Type: text/markdown\r\n\r\n")
    async with serve(runtime) as base:
        head = (b"POST /api/v1/kb/import HTTP/1.1\r\nHost: x\r\nAuthorization: "
                + token.encode() + b"\r\nContent-Type: multipart/form-data; boundary="
                + boundary + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunks = [preamble] + [b"a" * (1024 * 1024)] * 25  # 25 MB > the 20 MB import cap
        first = await _raw(base, head, chunks)
        assert b" 413 " in first, first


async def test_nul_bytes_are_a_422_and_the_text_is_not_logged(
    client: httpx.AsyncClient, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "póliza-secreta-7788"
    sent = await client.post("/api/v1/simulator/messages",
                             json={"from": "+525511112222", "text": f"{secret}\u0000"})
    assert sent.status_code == 422, sent.text
    assert "NUL" in sent.json()["detail"][0]["msg"]
    search = await client.get("/api/v1/conversations", params={"q": f"{secret}\x00"},
                              headers=world.agent_a.headers)
    assert search.status_code == 422, search.text
    note = await client.post(f"/api/v1/conversations/{world.own}/notes",
                             json={"text": f"{secret}\u0000"}, headers=world.agent_a.headers)
    assert note.status_code == 422
    out = capsys.readouterr()
    assert secret not in out.out + out.err


async def test_pages_and_api_send_security_headers(
    client: httpx.AsyncClient, world: World
) -> None:
    for path, headers in (("/inbox", world.agent_a.headers), ("/login", {})):
        page = await client.get(path, headers=headers)
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert page.headers["cache-control"] == "no-store"
    api = await client.get("/api/v1/conversations", headers=world.agent_a.headers)
    assert api.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in api.headers["content-security-policy"]


async def test_metrics_and_docs_can_be_limited_to_staff(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    settings = Settings(env="test", data_dir=tmp_path, log_level="WARNING",
                        security=SecuritySettings(metrics_allow="staff", docs_allow="10.9.0.0/16"))
    rt = await Runtime.create(settings, database_url=database_url, redis_url=redis_url)
    try:
        async with app_client(rt) as c:
            for path in ("/metrics", "/docs", "/openapi.json"):
                assert (await c.get(path)).status_code == 401, path
            from handoff.roles import Role
            key = await rt.api_keys.create(name="monitor", role=Role.AGENT, created_by="t")
            bearer = {"Authorization": f"Bearer {key.key}"}
            assert (await c.get("/metrics", headers=bearer)).status_code == 200
            assert (await c.get("/docs", headers=bearer)).status_code == 200
    finally:
        await rt.close()
