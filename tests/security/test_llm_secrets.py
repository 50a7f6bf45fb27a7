"""Admins cannot extract server secrets through the LLM settings: a stored key does not
follow its entry to a new api_base, model or provider; os.environ/ references are refused
from the admin API; provider URLs follow the webhook targets' rule in production."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry

from bot.errors import LLMConfigError
from bot.integrations.targets import check_target
from bot.llm.metrics import LLMMetrics
from bot.llm.scripted import ScriptedServer
from bot.llm.service import LLMService
from bot.wiring.runtime import Runtime
from tests.llm.conftest import deployment, servers

__all__ = ["servers"]  # the fixture

KEY = "sk-proj-verysecret-9876"


def _yaml(model_list: list[dict[str, Any]], **extra: Any) -> str:
    return yaml.safe_dump({"model_list": model_list,
                           "atiende": {"answer_model": model_list[0]["model_name"]}, **extra})


async def _saved(client: httpx.AsyncClient, admin: dict[str, str], text: str) -> httpx.Response:
    return await client.put("/api/v1/llm/chain", json={"yaml": text}, headers=admin)


async def test_a_stored_key_does_not_follow_a_new_api_base_or_model(
    client: httpx.AsyncClient, auth_headers: Any, runtime: Runtime,
    servers: Callable[..., ScriptedServer],
) -> None:
    admin = await auth_headers("admin")
    good, evil = servers(), servers()
    first = await _saved(client, admin, _yaml([deployment("primary", good, key=KEY)]))
    assert first.status_code == 200, first.text
    masked = first.json()["yaml"]
    assert KEY not in masked
    for changed in (masked.replace(good.url, evil.url),
                    masked.replace("openai/gpt-4o-mini", "openai/gpt-4o"),
                    masked.replace("openai/gpt-4o-mini", "anthropic/claude-3-haiku")):
        refused = await _saved(client, admin, changed)
        assert refused.status_code == 422, refused.text
        assert "key again" in refused.json()["detail"][0]["msg"]
    await client.post("/api/v1/llm/chain/test", headers=admin)
    assert evil.received == []  # the key never went to the new URL
    # the same edit with the key typed again is fine
    retyped = masked.replace(good.url, evil.url).replace("••••9876", "sk-other-key-5555")
    assert (await _saved(client, admin, retyped)).status_code == 200
    # unchanged destination: the masked key means "keep"
    kept = await _saved(client, admin, (await client.get(
        "/api/v1/llm/chain", headers=admin)).json()["yaml"])
    assert kept.status_code == 200


@pytest.mark.parametrize("where", ["api_key", "api_base", "organization"])
async def test_env_references_are_refused_from_the_admin_api(
    where: str, client: httpx.AsyncClient, auth_headers: Any,
    servers: Callable[..., ScriptedServer],
) -> None:
    admin = await auth_headers("admin")
    entry = deployment("primary", servers(), key=KEY)
    entry["litellm_params"][where] = "os.environ/ATIENDE_SECRET_KEY"
    refused = await _saved(client, admin, _yaml([entry]))
    assert refused.status_code == 422, refused.text
    assert "os.environ" in refused.json()["detail"][0]["msg"]


async def test_provider_urls_follow_the_webhook_rule_in_production(
    runtime: Runtime, servers: Callable[..., ScriptedServer],
) -> None:
    service = LLMService(
        sessions=runtime.sessions, metrics=LLMMetrics(CollectorRegistry()),
        secret_key="a-secret-key-for-this-test-only-0123456789", config_file=None,
        clock=runtime.clock, check_url=functools.partial(check_target, allow_private=False))
    for url in (servers().url, "http://10.1.2.3:8080", "http://169.254.169.254/latest"):
        entry = {"model_name": "primary", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": url, "api_key": KEY}}
        with pytest.raises(LLMConfigError, match="ATIENDE_LLM_ALLOW_PRIVATE"):
            await service.save_yaml(_yaml([entry]), by="test")
