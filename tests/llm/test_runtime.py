"""The chain inside the Runtime: config file, warm-up, call log, sealed saved configs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import yaml

from bot.answering.generation import GenerationRequest, Passage, PersonaText
from bot.llm.scripted import Behaviour, ScriptedServer
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from tests.llm.conftest import deployment

Servers = Callable[..., ScriptedServer]
PASSAGE = Passage("horario", "Horario", "Atendemos de 9 a 18 h.", 1.0)


def write_config(tmp_path: Path, server: ScriptedServer, key: str = "sk-live-abcdef123456") -> Path:
    path = tmp_path / "llm.yaml"
    path.write_text(yaml.safe_dump({
        "model_list": [deployment("primary", server, key=key)],
        "router_settings": {"num_retries": 0},
        "atiende": {"answer_model": "primary", "budget_seconds": 5},
    }))
    return path


def ask(question: str) -> GenerationRequest:
    return GenerationRequest(question, (PASSAGE,), (), "es", PersonaText("Atiende", "Seguros"),
                             asyncio.get_running_loop().time() + 5)


async def test_runtime_builds_warms_and_records(
    settings: Settings, database_url: str, redis_url: str, servers: Servers, tmp_path: Path
) -> None:
    server = servers(Behaviour.answer("Atendemos de 9 a 18 h [horario]."))
    configured = settings.model_copy(update={"llm_config": write_config(tmp_path, server)})
    runtime = await Runtime.create(configured, database_url=database_url, redis_url=redis_url)
    try:
        assert runtime.llm.configured and runtime.llm.chain.source == "file"
        assert runtime.llm.chain.warm_seconds is not None
        started = time.perf_counter()
        answer = await runtime.llm.generator.generate(ask("a q hora abren?"))
        first_call = time.perf_counter() - started
        assert answer is not None and answer.sources == ("horario",)
        assert first_call < 0.5, f"the first customer paid lazy loading: {first_call:.2f}s"
        await runtime.llm.calls.flush()
        rows = await runtime.llm.calls.recent()
        metrics = runtime.metrics.render().decode()
    finally:
        await runtime.close()
    assert len(rows) == 1
    row = rows[0]
    assert (row.purpose, row.outcome, row.provider, row.model) == (
        "answer", "ok", "openai", "openai/gpt-4o-mini")
    assert row.prompt_tokens == 50 and row.completion_tokens > 0
    assert row.cost_usd is not None and row.cost_usd > 0
    assert 'atiende_llm_calls_total{model="primary",outcome="ok",purpose="answer"} 1.0' in metrics


async def test_bad_config_file_leaves_the_bot_answering(
    settings: Settings, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "llm.yaml"
    path.write_text("model_list: [{model_name: x}]\n")
    configured = settings.model_copy(update={"llm_config": path})
    runtime = await Runtime.create(configured, database_url=database_url, redis_url=redis_url)
    try:
        assert not runtime.llm.configured
        assert runtime.llm.chain.error and "litellm_params" in runtime.llm.chain.error
        assert await runtime.llm.generator.generate(ask("hola")) is None
    finally:
        await runtime.close()


async def test_saved_chain_is_sealed_and_survives_restart(
    settings: Settings, database_url: str, redis_url: str, servers: Servers, tmp_path: Path
) -> None:
    server = servers(Behaviour.answer("Atendemos de 9 a 18 h [horario]."))
    key = "sk-live-abcdef123456"
    runtime = await Runtime.create(settings, database_url=database_url, redis_url=redis_url)
    try:
        assert not runtime.llm.configured
        plain = yaml.safe_dump({"model_list": [deployment("primary", server, key=key)]})
        await runtime.llm.save_yaml(plain, by="admin@example.com")
        masked = runtime.llm.masked_yaml()
        assert key not in masked and "••••3456" in masked
        await runtime.llm.save_yaml(masked, by="admin@example.com")  # masked = keep
    finally:
        await runtime.close()
    with psycopg.connect(database_url) as conn:
        stored = [r[0] for r in conn.execute("SELECT document::text FROM llm_chain_configs")]
    assert len(stored) == 2 and all(key not in s and "fernet:" in s for s in stored)

    again = await Runtime.create(settings, database_url=database_url, redis_url=redis_url)
    try:
        assert again.llm.chain.source == "database"
        assert again.llm.chain.config is not None
        assert next(again.llm.chain.config.secrets())[2] == key
        assert await again.llm.generator.generate(ask("horario?")) is not None
        assert server.received[-1].authorization == f"Bearer {key}"
    finally:
        await again.close()
