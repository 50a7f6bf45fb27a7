"""The chain against real HTTP servers that behave like providers (on script)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from bot.errors import LLMRateLimited
from bot.llm.scripted import Behaviour, ScriptedServer
from tests.llm.conftest import chain_config, deployment, sample

MSG = [{"role": "user", "content": "¿cuánto cuesta el seguro de auto?"}]
Servers = Callable[..., ScriptedServer]


def deadline(seconds: float = 8) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_fallback_order_is_honoured(servers: Servers, make_chain: Any) -> None:
    first = servers(Behaviour.error(500))
    second = servers(Behaviour.error(503))
    third = servers(Behaviour.answer("respuesta del tercero"))
    unused = servers(Behaviour.answer("nunca"))
    config = chain_config(
        [deployment("primary", first), deployment("secondary", second),
         deployment("tertiary", third), deployment("other", unused)],
        fallbacks=[{"primary": ["secondary", "tertiary", "other"]}],
    )
    registry = CollectorRegistry()
    chain = await make_chain(config, registry=registry)
    assert config.chain_for("primary") == ["primary", "secondary", "tertiary", "other"]

    completion = await chain.call("answer", MSG, deadline=deadline())

    assert completion is not None
    assert completion.text == "respuesta del tercero"
    assert completion.model_name == "tertiary"
    assert (first.calls, second.calls, third.calls, unused.calls) == (1, 1, 1, 0)
    assert sample(registry, "atiende_llm_calls_total", purpose="answer", model="tertiary",
                  outcome="fallback") == 1


async def test_fallback_after_500_adds_little_time(servers: Servers, make_chain: Any) -> None:
    broken, backup = servers(Behaviour.error(500)), servers(Behaviour.answer("hola"))
    chain = await make_chain(chain_config(
        [deployment("primary", broken), deployment("backup", backup)],
        fallbacks=[{"primary": ["backup"]}], allowed_fails=1000,
    ))
    await chain.call("answer", MSG, deadline=deadline(), model_name="backup")  # warm code path
    await chain.call("answer", MSG, deadline=deadline())
    started = time.perf_counter()
    completion = await chain.call("answer", MSG, deadline=deadline())
    assert completion is not None and completion.model_name == "backup"
    assert time.perf_counter() - started < 0.5  # the benchmark measures the real figure


async def test_hanging_primary_costs_its_timeout_once_then_cools_down(
    servers: Servers, make_chain: Any
) -> None:
    hanging = servers(Behaviour.hang(30))
    backup = servers(Behaviour.answer("respuesta de respaldo"))
    chain = await make_chain(chain_config(
        [deployment("primary", hanging, timeout=0.6), deployment("backup", backup)],
        fallbacks=[{"primary": ["backup"]}],
    ))
    started = time.perf_counter()
    first = await chain.call("answer", MSG, deadline=deadline())
    first_seconds = time.perf_counter() - started
    assert first is not None and first.text == "respuesta de respaldo"
    assert 0.55 < first_seconds < 0.6 + 0.9

    for _ in range(3):
        started = time.perf_counter()
        again = await chain.call("answer", MSG, deadline=deadline())
        assert again is not None and again.model_name == "backup"
        assert time.perf_counter() - started < 0.3, "the hanging primary was asked again"
    assert hanging.calls == 1, "the hanging primary was not cooled down after one timeout"
    assert backup.calls == 4


@pytest.mark.parametrize("budget, given", [(0.7, 8.0), (8.0, 0.5)])
async def test_time_budget_always_holds(
    servers: Servers, make_chain: Any, budget: float, given: float
) -> None:
    slow = [servers(Behaviour.hang(30)) for _ in range(3)]
    registry = CollectorRegistry()
    chain = await make_chain(chain_config(
        [deployment(f"m{i}", s, timeout=5) for i, s in enumerate(slow)],
        fallbacks=[{"m0": ["m1", "m2"]}], budget=budget,
    ), registry=registry)
    limit = min(budget, given)
    for _ in range(2):
        started = time.perf_counter()
        result = await chain.call("answer", MSG, deadline=deadline(given))
        elapsed = time.perf_counter() - started
        assert result is None
        assert limit - 0.05 < elapsed < limit + 0.15
    assert sample(registry, "atiende_llm_unavailable_total", reason="budget") == 2


async def test_spent_budget_returns_at_once(servers: Servers, make_chain: Any) -> None:
    server = servers(Behaviour.answer("tarde"))
    chain = await make_chain(chain_config([deployment("m", server)]))
    started = time.perf_counter()
    assert await chain.call("answer", MSG, deadline=deadline(-1)) is None
    assert time.perf_counter() - started < 0.01
    assert server.calls == 0


async def test_rate_limited_key_is_rotated(servers: Servers, make_chain: Any) -> None:
    provider = servers(Behaviour.answer("respuesta con la llave buena"),
                       by_key={"sk-limited-aaaa": Behaviour.rate_limited(30)})
    chain = await make_chain(chain_config(
        [deployment("primary", provider, key="sk-limited-aaaa"),
         deployment("primary", provider, key="sk-good-bbbbbb")],
        num_retries=1,
    ))
    for _ in range(6):
        started = time.perf_counter()
        completion = await chain.call("answer", MSG, deadline=deadline())
        assert completion is not None and completion.text == "respuesta con la llave buena"
        assert time.perf_counter() - started < 1.0, "waited for Retry-After despite another key"
    limited = [r for r in provider.received if r.authorization == "Bearer sk-limited-aaaa"]
    assert len(limited) <= 1, "a rate-limited key kept being used"


async def test_rate_limit_is_translated_with_retry_after(servers: Servers) -> None:
    from bot.llm.adapter import LiteLLMChain

    provider = servers(Behaviour.rate_limited(7))
    adapter = LiteLLMChain(chain_config([deployment("only", provider)]))
    try:
        with pytest.raises(LLMRateLimited) as caught:
            await adapter.complete("only", MSG, max_tokens=10, temperature=0)
    finally:
        adapter.close()
    assert caught.value.retry_after == 7


async def test_malformed_json_falls_back(servers: Servers, make_chain: Any) -> None:
    broken, backup = servers(Behaviour.malformed()), servers(Behaviour.answer("bien formado"))
    chain = await make_chain(chain_config(
        [deployment("primary", broken), deployment("backup", backup)],
        fallbacks=[{"primary": ["backup"]}],
    ))
    completion = await chain.call("answer", MSG, deadline=deadline())
    assert completion is not None and completion.text == "bien formado"
    assert broken.calls == 1


async def test_nothing_reachable_returns_none_quickly(make_chain: Any) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    registry = CollectorRegistry()
    config = chain_config([{"model_name": "gone", "litellm_params": {
        "model": "openai/gpt-4o-mini", "api_base": f"http://127.0.0.1:{port}/v1",
        "api_key": "sk-x", "timeout": 2}}])
    chain = await make_chain(config, registry=registry)
    started = time.perf_counter()
    assert await chain.call("answer", MSG, deadline=deadline()) is None
    assert time.perf_counter() - started < 1.0
    assert sample(registry, "atiende_llm_unavailable_total", reason="unreachable") == 1


async def test_unconfigured_chain_returns_none_and_counts(make_chain: Any) -> None:
    registry = CollectorRegistry()
    chain = await make_chain(None, registry=registry)
    started = time.perf_counter()
    assert await chain.call("answer", MSG, deadline=deadline()) is None
    assert time.perf_counter() - started < 0.01
    assert sample(registry, "atiende_llm_unavailable_total", reason="unconfigured") == 1
    assert sample(registry, "atiende_llm_configured") == 0
