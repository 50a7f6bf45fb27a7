"""``runtime.llm``: the chain, the three generation ports, and the admin operations."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.errors import LLMConfigError, WebhookTargetRefused
from bot.llm import secrets as sealing
from bot.llm.chain import LLMChain
from bot.llm.config import ChainConfig, load_chain_file, parse_chain_yaml
from bot.llm.drafting import ChainArticleDrafter
from bot.llm.generation import ChainAnswerGenerator, ChainIntentClassifier, ChainSummarizer
from bot.llm.metrics import LLMMetrics
from bot.llm.store import CallLog, ConfigStore
from bot.logs import get_logger

log = get_logger("atiende.llm")


@dataclass(frozen=True, slots=True)
class ModelTest:
    """The result of the admin's "test" button for one model_name."""

    model_name: str
    ok: bool
    latency_ms: float
    answered_by: str | None
    text: str | None
    error: str | None


class LLMService:
    """Builds the chain from the saved config or ``ATIENDE_LLM_CONFIG``; keeps it current.

    ``generator``, ``classifier`` and ``summarizer`` always exist; while no chain is
    configured (or none answers in time) they return None at once, and the bot
    answers from the knowledge base without generation.
    """

    def __init__(
        self, *, sessions: async_sessionmaker[AsyncSession], metrics: LLMMetrics,
        secret_key: str, config_file: Path | None, clock: Clock,
        memory_hours: float = 24.0,
        check_url: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        from datetime import timedelta

        self.calls = CallLog(sessions)
        self.store = ConfigStore(sessions)
        self.chain = LLMChain(metrics=metrics, calls=self.calls)
        self.box = sealing.SecretBox(secret_key)
        self.config_file = config_file
        self._check_url = check_url  # the webhook targets' rule, from the wiring
        self.generator = ChainAnswerGenerator(
            self.chain, clock=clock, memory_window=timedelta(hours=memory_hours)
        )
        self.classifier = ChainIntentClassifier(self.chain)
        self.summarizer = ChainSummarizer(self.chain)
        self.drafter = ChainArticleDrafter(self.chain)  # knowledge suggestions
        self._watch: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one (re)configuration at a time

    @property
    def configured(self) -> bool:
        return self.chain.configured

    def use_catalog(self, names: Callable[[], Collection[str]]) -> None:
        """Product names of the whole catalog: a draft naming one absent from its passages
        is refused (the knowledge side passes a cheap, cached lookup)."""
        self.generator.known_products = names

    @property
    def budget_seconds(self) -> float:
        return self.chain.budget_seconds

    async def start(self, *, warm: bool = True) -> None:
        """Load the newest saved config, else the file, else run unconfigured."""
        async with self._lock:
            await self._load(warm=warm)

    async def _load(self, *, warm: bool = True) -> None:
        try:
            saved = await self.store.latest()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("llm.saved_config_unreadable", error=str(exc)[:200])
            saved = None
        if saved is not None:
            config_id, document = saved
            try:
                config = sealing.open_config(document, self.box)
            except LLMConfigError as exc:
                self.chain.fail(str(exc), source="database")
                return
            await self.chain.apply(config, source="database", config_id=config_id, warm=warm)
            return
        if self.config_file is None:
            await self.chain.apply(None, source="none")
            return
        try:
            config = load_chain_file(self.config_file)
        except LLMConfigError as exc:
            self.chain.fail(str(exc), source="file")
            return
        await self.chain.apply(config, source="file", warm=warm)

    def masked_yaml(self) -> str:
        if self.chain.config is None:
            return ""
        import yaml

        return yaml.safe_dump(
            sealing.masked_document(self.chain.config), sort_keys=False, allow_unicode=True
        )

    async def save_yaml(self, text: str, *, by: str | None) -> ChainConfig:
        """Validate an edited chain (masked keys mean "keep"), store it sealed, use it now."""
        edited = parse_chain_yaml(text)
        config = sealing.open_config(
            sealing.unmask(edited.to_document(), self.chain.config), self.box
        )
        await self._check_urls(config)
        async with self._lock:
            config_id = await self.store.save(sealing.seal_config(config, self.box), by=by)
            await self.chain.apply(config, source="database", config_id=config_id)
        return config

    async def _check_urls(self, config: ChainConfig) -> None:
        """Provider URLs typed in the admin API follow the webhook targets' rule: no
        loopback or private-range hosts in production unless allowed."""
        if self._check_url is None:
            return
        for deployment in config.model_list:
            for key in ("api_base", "base_url"):
                url = deployment.litellm_params.get(key)
                if not url:
                    continue
                try:
                    await self._check_url(str(url))
                except WebhookTargetRefused as exc:
                    raise LLMConfigError(
                        f"{deployment.model_name}: {key}: {exc.reason}".replace(
                            "ATIENDE_WEBHOOKS_ALLOW_PRIVATE", "ATIENDE_LLM_ALLOW_PRIVATE")
                    ) from exc

    async def test(self, prompt: str = "Responde solo: ok") -> list[ModelTest]:
        """One short request to each model_name (with its fallbacks), within the budget."""
        config = self.chain.config
        if config is None:
            return []
        loop = asyncio.get_running_loop()
        results = []
        for name in config.model_names:
            started = time.perf_counter()
            completion = await self.chain.call(
                "test", [{"role": "user", "content": prompt}], model_name=name,
                deadline=loop.time() + self.chain.budget_seconds, max_tokens=20,
            )
            latency = round((time.perf_counter() - started) * 1000, 1)
            results.append(ModelTest(
                model_name=name, ok=completion is not None, latency_ms=latency,
                answered_by=completion.model_name if completion else None,
                text=completion.text[:200] if completion else None,
                error=None if completion else "no answer within the budget (see the call log)",
            ))
        return results

    async def refresh(self) -> bool:
        """Pick up a config another process saved; True when it changed."""
        async with self._lock:
            try:
                newest = await self.store.latest_id()
            except (SQLAlchemyError, OSError):
                return False
            if newest is None or newest == self.chain.config_id:
                return False
            await self._load()
            return True

    def start_watching(self, every_seconds: float = 10.0) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(every_seconds)
                await self.refresh()

        self._watch = asyncio.create_task(loop(), name="atiende-llm-config-watch")

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        await self.calls.close()
        self.chain.close()

    def describe(self) -> dict[str, Any]:
        config = self.chain.config
        return {
            "configured": self.configured,
            "source": self.chain.source,
            "error": self.chain.error,
            "budget_seconds": self.budget_seconds,
            "warm_seconds": self.chain.warm_seconds,
            "purposes": {p: config.chain_for(config.model_for(p))
                         for p in ("answer", "intent", "summary")} if config else {},
        }
