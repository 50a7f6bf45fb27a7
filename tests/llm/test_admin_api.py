"""The admin API and page of the chain: roles, masked keys, edits, the test button, calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from bot.llm.scripted import Behaviour, ScriptedServer
from bot.wiring.runtime import Runtime
from tests.llm.conftest import deployment

Servers = Callable[..., ScriptedServer]
KEY = "sk-proj-verysecret-9876"


def chain_yaml(primary: ScriptedServer, backup: ScriptedServer) -> str:
    return yaml.safe_dump({
        "model_list": [deployment("primary", primary, key=KEY, timeout=1),
                       deployment("backup", backup, key="sk-backup-key-1111")],
        "router_settings": {"fallbacks": [{"primary": ["backup"]}]},
        "atiende": {"answer_model": "primary", "budget_seconds": 4},
    })


async def test_chain_endpoints_need_an_admin(client: httpx.AsyncClient, auth_headers: Any) -> None:
    assert (await client.get("/api/v1/llm/chain")).status_code == 401
    agent = await auth_headers("agent")
    assert (await client.get("/api/v1/llm/chain", headers=agent)).status_code == 403
    assert (await client.put("/api/v1/llm/chain", json={"yaml": "x"},
                             headers=agent)).status_code == 403
    assert (await client.post("/api/v1/llm/chain/test", headers=agent)).status_code == 403
    page = await client.get("/admin/llm")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


async def test_edit_test_and_watch_the_chain(
    client: httpx.AsyncClient, auth_headers: Any, runtime: Runtime, servers: Servers,
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BACKUP_KEY", "sk-backup-key-1111")
    admin = await auth_headers("admin")
    before = (await client.get("/api/v1/llm/chain", headers=admin)).json()
    assert before["configured"] is False and before["source"] == "none"

    primary, backup = servers(Behaviour.error(500)), servers(Behaviour.answer("ok"))
    saved = await client.put("/api/v1/llm/chain", json={"yaml": chain_yaml(primary, backup)},
                             headers=admin)
    assert saved.status_code == 200, saved.text
    chain = saved.json()
    assert chain["configured"] and chain["source"] == "database"
    assert chain["purposes"]["answer"] == ["primary", "backup"]
    assert [m["api_key"] for m in chain["models"]] == ["••••9876", "••••1111"]
    assert KEY not in saved.text and KEY not in chain["yaml"]

    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT document::text FROM llm_chain_configs").fetchone()
    assert stored is not None and KEY not in stored[0] and "fernet:" in stored[0]

    tested = await client.post("/api/v1/llm/chain/test", headers=admin)
    assert tested.status_code == 200
    results = {r["model_name"]: r for r in tested.json()}
    assert results["primary"]["ok"] and results["primary"]["answered_by"] == "backup"
    assert results["backup"]["ok"] and results["backup"]["text"] == "ok"
    assert primary.received[0].authorization == f"Bearer {KEY}"

    calls = (await client.get("/api/v1/llm/calls", headers=admin)).json()
    outcomes = sorted((c["model_group"], c["outcome"]) for c in calls["calls"])
    assert outcomes == [("backup", "ok"), ("primary", "fallback")]
    assert any(a["outcome"] == "error" for c in calls["calls"] for a in c["attempts"] or [])

    # re-saving the masked YAML keeps the key; a bad edit is refused with its reason
    again = await client.put("/api/v1/llm/chain", json={"yaml": chain["yaml"]}, headers=admin)
    assert again.status_code == 200
    assert next(runtime.llm.chain.config.secrets())[2] == KEY  # type: ignore[union-attr]
    bad = await client.put("/api/v1/llm/chain", json={"yaml": "model_list: [{model_name: a, "
                           "litellm_params: {model: openai/x}}]\natiende: {answer_model: zzz}"},
                           headers=admin)
    assert bad.status_code == 422 and "zzz" in bad.json()["detail"][0]["msg"]
    wrong_mask = await client.put("/api/v1/llm/chain", json={
        "yaml": chain["yaml"].replace("••••9876", "••••0000")}, headers=admin)
    assert wrong_mask.status_code == 422 and "masked" in wrong_mask.json()["detail"][0]["msg"]


async def test_admin_page_is_bilingual_and_never_uses_inner_html(
    client: httpx.AsyncClient, auth_headers: Any
) -> None:
    admin = await auth_headers("admin")
    page = await client.get("/admin/llm", headers=admin)
    assert page.status_code == 200 and "Cadena de modelos (LLM)" in page.text
    english = await client.get("/admin/llm", headers={**admin, "Cookie": "atiende_lang=en"})
    assert "Model chain (LLM)" in english.text and "Cadena de modelos" not in english.text
    # the page's script is a static module that writes text, never markup
    assert "innerHTML" not in page.text and '<script type="module" src=' in page.text
    module = await client.get("/static/js/pages/llm.js")
    assert module.status_code == 200
    assert "innerHTML" not in module.text and "textContent" in module.text
