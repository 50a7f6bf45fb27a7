"""Scripted OpenAI-compatible servers on 127.0.0.1 and chains built on them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from bot.llm import LLMChain, LLMMetrics, parse_chain_yaml
from bot.llm.config import ChainConfig
from bot.llm.scripted import Behaviour, ScriptedServer


@pytest.fixture
def servers() -> Iterator[Callable[..., ScriptedServer]]:
    started: list[ScriptedServer] = []

    def start(default: Behaviour | None = None, **kwargs: Any) -> ScriptedServer:
        server = ScriptedServer(default=default or Behaviour.answer("ok"), **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def deployment(name: str, server: ScriptedServer, *, key: str = "sk-test-0000",
               timeout: float = 2, model: str = "openai/gpt-4o-mini") -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {
        "model": model, "api_base": server.url, "api_key": key, "timeout": timeout}}


def chain_config(model_list: list[dict[str, Any]], *, fallbacks: list[dict[str, Any]] | None = None,
                 budget: float = 8, **router: Any) -> ChainConfig:
    import yaml

    document = {
        "model_list": model_list,
        "router_settings": {"fallbacks": fallbacks or [], **router},
        "atiende": {"answer_model": model_list[0]["model_name"], "budget_seconds": budget},
    }
    return parse_chain_yaml(yaml.safe_dump(document))


@pytest.fixture
async def make_chain() -> AsyncIterator[Callable[..., Any]]:
    """``await make_chain(config, registry=...)``: a built chain, closed after the test."""
    chains: list[LLMChain] = []

    async def build(
        config: ChainConfig | None, *, registry: CollectorRegistry | None = None, **kwargs: Any
    ) -> LLMChain:
        chain = LLMChain(metrics=LLMMetrics(registry or CollectorRegistry()), **kwargs)
        await chain.apply(config, source="test", warm=False)
        chains.append(chain)
        return chain

    yield build
    for chain in chains:
        chain.close()


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return value or 0.0

