"""The chain as the bot uses it: a time budget per message, and every call recorded.

litellm (imported lazily, in a thread, only when a chain is configured) does the
routing: fallbacks, key rotation, retries, cooldowns. This object adds what the
bot needs on top: it never waits past the message's deadline, it turns every
failure into ``None`` (the caller answers without generation), and it records
each call in PostgreSQL and Prometheus.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.errors import LLMError, LLMTimeout, LLMUnavailable
from bot.llm.config import ChainConfig
from bot.llm.metrics import LLMMetrics
from bot.llm.store import CallLog, CallRecord
from bot.logs import correlation_id, get_logger

if TYPE_CHECKING:
    from bot.llm.adapter import Attempt, Completion, LiteLLMChain

log = get_logger("atiende.llm")

DEFAULT_BUDGET_SECONDS = 8.0
MIN_USEFUL_SECONDS = 0.05

Check = Callable[["Completion"], str | None]


class LLMChain:
    """Calls the configured chain within a deadline; ``None`` whenever it cannot help."""

    def __init__(self, *, metrics: LLMMetrics, calls: CallLog | None = None) -> None:
        self._metrics = metrics
        self._calls = calls
        self._adapter: LiteLLMChain | None = None
        self.config: ChainConfig | None = None
        self.source = "none"
        self.config_id: int | None = None
        self.error: str | None = None
        self.warm_seconds: float | None = None

    @property
    def configured(self) -> bool:
        return self._adapter is not None

    @property
    def budget_seconds(self) -> float:
        return self.config.atiende.budget_seconds if self.config else DEFAULT_BUDGET_SECONDS

    def secrets(self) -> list[str]:
        """Configuration values an answer must never contain (keys, endpoints)."""
        if self.config is None:
            return []
        values = [value for _, _, value in self.config.secrets()]
        values += [str(d.litellm_params.get("api_base", "")) for d in self.config.model_list]
        return [v for v in values if v and not v.startswith("os.environ/")]

    async def apply(
        self, config: ChainConfig | None, *, source: str, config_id: int | None = None,
        warm: bool = True,
    ) -> None:
        """Build (and warm) a router for ``config``, then swap it in; None unconfigures."""
        if config is None:
            self._swap(None, None, source="none", config_id=None)
            log.warning("llm.unconfigured", detail="answers use the knowledge base only")
            return
        module = await asyncio.to_thread(importlib.import_module, "bot.llm.adapter")
        adapter: LiteLLMChain = module.LiteLLMChain(config, on_attempt=self._on_attempt)
        if warm and config.atiende.warm_up:
            self.warm_seconds = await adapter.warm_up()
        self._swap(adapter, config, source=source, config_id=config_id)
        self._warn_about_timeouts(config)
        log.info("llm.configured", source=source, models=config.model_names,
                 warm_seconds=self.warm_seconds)

    def fail(self, error: str, *, source: str) -> None:
        """A configuration that could not be used: answer without the LLM, say why."""
        self._swap(None, None, source=source, config_id=None)
        self.error = error
        log.error("llm.config_error", source=source, error=error)

    def _swap(
        self, adapter: LiteLLMChain | None, config: ChainConfig | None, *, source: str,
        config_id: int | None,
    ) -> None:
        old, self._adapter = self._adapter, adapter
        self.config, self.source, self.config_id, self.error = config, source, config_id, None
        self._metrics.configured.set(1 if adapter else 0)
        if old is not None:
            old.close()

    def _warn_about_timeouts(self, config: ChainConfig) -> None:
        budget = config.atiende.budget_seconds
        default = config.router_kwargs().get("timeout")
        for d in config.model_list:
            timeout = d.litellm_params.get("timeout", default)
            if not isinstance(timeout, int | float) or timeout >= budget:
                log.warning("llm.timeout_exceeds_budget", model_name=d.model_name,
                            timeout=timeout, budget=budget)

    def _on_attempt(self, attempt: Attempt) -> None:
        self._metrics.attempt_failures.labels(
            attempt.provider, attempt.model, attempt.outcome
        ).inc()

    def close(self) -> None:
        if self._adapter is not None:
            self._adapter.close()
            self._adapter = None

    async def call(
        self,
        purpose: str,
        messages: list[dict[str, str]],
        *,
        deadline: float,
        model_name: str | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
        check: Check | None = None,
    ) -> Completion | None:
        """The chain's answer by ``deadline`` (event-loop time) that passes ``check``, or None."""
        adapter, config = self._adapter, self.config
        if adapter is None or config is None:
            self._metrics.unavailable.labels("unconfigured").inc()
            return None
        perf = time.perf_counter()
        started = asyncio.get_running_loop().time()
        remaining = min(deadline, started + config.atiende.budget_seconds) - started
        group = model_name or config.model_for(purpose)
        record = CallRecord(purpose=purpose, model_group=group, outcome="timeout", latency_ms=0,
                            conversation_id=correlation_id("conversation_id"))
        if remaining < MIN_USEFUL_SECONDS:
            record.error = "no time left in the message's budget"
            return self._finish(record, perf, None, reason="budget")
        try:
            completion = await asyncio.wait_for(
                adapter.complete(
                    group, messages, max_tokens=max_tokens or config.atiende.max_answer_tokens,
                    temperature=config.atiende.temperature, json_mode=json_mode,
                ),
                timeout=remaining,
            )
        except TimeoutError:
            record.error = f"time budget of {remaining:.2f}s spent"
            return self._finish(record, perf, None, reason="budget")
        except LLMTimeout as exc:
            record.error, record.attempts = str(exc)[:500], exc.attempts
            return self._finish(record, perf, None, reason="timeout")
        except LLMUnavailable as exc:
            record.outcome, record.error, record.attempts = "error", str(exc)[:500], exc.attempts
            return self._finish(record, perf, None, reason="unreachable")
        except LLMError as exc:
            record.outcome, record.error, record.attempts = "error", str(exc)[:500], exc.attempts
            return self._finish(record, perf, None, reason="error")
        record.outcome = (
            "fallback" if completion.fallbacks or completion.model_name != group else "ok"
        )
        record.answered_by, record.provider, record.model = (
            completion.model_name, completion.provider, completion.model
        )
        record.prompt_tokens, record.completion_tokens = (
            completion.prompt_tokens, completion.completion_tokens
        )
        record.cost_usd = completion.cost_usd
        record.attempts = completion.attempts
        record.rejected = check(completion) if check is not None else None
        return self._finish(record, perf, None if record.rejected else completion, reason=None)

    def _finish(
        self, record: CallRecord, perf: float, result: Completion | None, *, reason: str | None
    ) -> Completion | None:
        m = self._metrics
        record.latency_ms = round((time.perf_counter() - perf) * 1000, 2)
        m.calls.labels(record.purpose, record.answered_by or record.model_group,
                       record.outcome).inc()
        m.latency.labels(record.purpose).observe(record.latency_ms / 1000)
        if reason is not None:
            m.unavailable.labels(reason).inc()
            log.warning("llm.no_answer", purpose=record.purpose, model=record.model_group,
                        outcome=record.outcome, reason=reason, error=record.error)
        if record.model:
            m.tokens.labels(record.model, "prompt").inc(record.prompt_tokens)
            m.tokens.labels(record.model, "completion").inc(record.completion_tokens)
            if record.cost_usd:
                m.cost.labels(record.model).inc(record.cost_usd)
        if record.rejected:
            m.rejected.labels(record.rejected).inc()
            log.warning("llm.draft_rejected", purpose=record.purpose, reason=record.rejected,
                        model=record.model)
        if self._calls is not None:
            self._calls.add(record)
        return result
