"""The only module that imports litellm: a Router built from our config, errors translated.

Everything litellm-specific lives here: building ``litellm.Router`` from the
config, warming its lazy imports, reading which deployment answered (tokens,
cost from litellm's offline cost map, fallbacks taken), collecting the failed
attempts of a call, and turning litellm's exceptions into ``bot.errors``.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the map at import

import asyncio  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any, cast  # noqa: E402

import litellm  # noqa: E402
from litellm.exceptions import (  # noqa: E402
    APIResponseValidationError,
    RateLimitError,
    Timeout,
)
from litellm.integrations.custom_logger import CustomLogger  # noqa: E402
from litellm.router import Router  # noqa: E402
from litellm.types.router import AllowedFailsPolicy, RetryPolicy  # noqa: E402

from bot.errors import (  # noqa: E402
    LLMBadResponse,
    LLMError,
    LLMRateLimited,
    LLMTimeout,
    LLMUnavailable,
)
from bot.llm.config import ChainConfig, Deployment  # noqa: E402
from bot.llm.scripted import Behaviour, ScriptedServer  # noqa: E402

_META_KEY = "atiende_call_id"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request to one deployment that did not give the answer."""

    provider: str
    model: str
    latency_ms: float
    outcome: str  # timeout | rate_limited | error
    error: str


@dataclass(frozen=True, slots=True)
class Completion:
    """The answer of the chain and who gave it."""

    text: str
    model_name: str
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    fallbacks: int
    attempts: list[Attempt] = field(default_factory=list)


AttemptHook = Callable[[Attempt], None]


class _AttemptLogger(CustomLogger):
    """Collects failed attempts of our calls (litellm callbacks are process-wide)."""

    def __init__(self, on_attempt: AttemptHook | None) -> None:
        super().__init__()
        self.calls: dict[str, list[Attempt]] = {}
        self.models: dict[str, str] = {}  # deployment id -> model as configured
        self._on_attempt = on_attempt

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        metadata = (kwargs.get("litellm_params") or {}).get("metadata") or {}
        call_id = metadata.get(_META_KEY)
        sink = self.calls.get(call_id) if isinstance(call_id, str) else None
        if sink is None:
            return
        exc = kwargs.get("exception")
        try:
            latency = (end_time - start_time).total_seconds() * 1000
        except (TypeError, AttributeError):
            latency = 0.0
        provider = str(kwargs.get("custom_llm_provider") or "unknown")
        info = (kwargs.get("litellm_params") or {}).get("model_info") or {}
        # the model as configured ("openai/gpt-4o"), as answers record it, not litellm's
        # stripped name ("gpt-4o")
        model = self.models.get(str(info.get("id"))) or str(kwargs.get("model") or "unknown")
        attempt = Attempt(
            provider=provider,
            model=model,
            latency_ms=round(latency, 2),
            outcome=_outcome_of(exc),
            error=type(exc).__name__ if exc is not None else "unknown",
        )
        sink.append(attempt)
        if self._on_attempt is not None:
            self._on_attempt(attempt)


def _outcome_of(exc: object) -> str:
    if isinstance(exc, Timeout):
        return "timeout"
    if isinstance(exc, RateLimitError):
        return "rate_limited"
    return "error"


def _quiet_litellm() -> None:
    litellm.suppress_debug_info = True
    setattr(litellm, "set_verbose", False)  # noqa: B010 - not in litellm's exports
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _router_kwargs(config: ChainConfig) -> dict[str, Any]:
    kwargs = config.router_kwargs()
    if isinstance(kwargs.get("allowed_fails_policy"), dict):
        kwargs["allowed_fails_policy"] = AllowedFailsPolicy(**kwargs["allowed_fails_policy"])
    if isinstance(kwargs.get("retry_policy"), dict):
        kwargs["retry_policy"] = RetryPolicy(**kwargs["retry_policy"])
    return kwargs


def _model_list(config: ChainConfig) -> list[dict[str, Any]]:
    result = []
    for deployment in config.model_list:
        entry = deployment.model_dump(exclude_none=True)
        params = dict(entry["litellm_params"])
        params.setdefault("max_retries", 0)  # litellm's router does the retrying, boundedly
        entry["litellm_params"] = params
        result.append(entry)
    return result


class LiteLLMChain:
    """A ``litellm.Router`` over the configured deployments (fallbacks, keys, cooldowns)."""

    def __init__(self, config: ChainConfig, *, on_attempt: AttemptHook | None = None) -> None:
        _quiet_litellm()
        self.config = config
        self._logger = _AttemptLogger(on_attempt)
        try:
            self._router = Router(model_list=_model_list(config), **_router_kwargs(config))
        except (ValueError, TypeError, KeyError) as exc:
            raise LLMUnavailable(f"litellm refused the configuration: {exc}") from exc
        # failures only: a success callback would put litellm's logging on every answer
        litellm.logging_callback_manager.add_litellm_async_failure_callback(self._logger)
        self._by_id = {
            str(d.get("model_info", {}).get("id")): d for d in self._router.model_list
        }
        self._logger.models = {
            k: str(d.get("litellm_params", {}).get("model")) for k, d in self._by_id.items()
        }

    def close(self) -> None:
        """Unhook this router from litellm's process-wide callback lists."""
        self._router.discard()  # type: ignore[no-untyped-call]
        litellm.logging_callback_manager.remove_callback_from_all_lists(self._logger)

    async def complete(
        self,
        model_name: str,
        messages: list[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float,
        json_mode: bool = False,
    ) -> Completion:
        """Ask ``model_name`` (then its fallbacks); raise an ``LLMError`` when none answers."""
        call_id = uuid.uuid4().hex
        attempts: list[Attempt] = []
        self._logger.calls[call_id] = attempts
        extra: dict[str, Any] = {}
        if json_mode:
            extra["response_format"] = {"type": "json_object"}
        try:
            response = await self._router.acompletion(
                model=model_name,
                messages=cast(Any, messages),
                max_tokens=max_tokens,
                temperature=temperature,
                metadata={_META_KEY: call_id},
                drop_params=True,
                **extra,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the vendor boundary: every litellm error
            error = _translate(exc, model_name)
            error.attempts = attempts  # type: ignore[assignment]  # recorded with the call
            raise error from exc
        finally:
            asyncio.get_running_loop().call_later(5, self._logger.calls.pop, call_id, None)
        return self._completion(response, model_name, attempts)

    def _completion(self, response: Any, asked: str, attempts: list[Attempt]) -> Completion:
        try:
            text = response.choices[0].message.content
        except (AttributeError, IndexError, KeyError) as exc:
            raise LLMBadResponse("the provider answered without a message") from exc
        if not isinstance(text, str) or not text.strip():
            raise LLMBadResponse("the provider answered with an empty message")
        hidden: dict[str, Any] = getattr(response, "_hidden_params", None) or {}
        deployment = self._by_id.get(str(hidden.get("model_id")))
        params = (deployment or {}).get("litellm_params", {})
        model = str(params.get("model") or response.model or "unknown")
        usage = getattr(response, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        headers = hidden.get("additional_headers") or {}
        try:
            fallbacks = int(headers.get("x-litellm-attempted-fallbacks") or 0)
        except (TypeError, ValueError):
            fallbacks = 0
        return Completion(
            text=text.strip(),
            model_name=str((deployment or {}).get("model_name") or asked),
            provider=str(hidden.get("custom_llm_provider") or model.split("/", 1)[0]),
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=_cost(hidden.get("response_cost"), params, prompt, completion),
            fallbacks=fallbacks,
            attempts=attempts,
        )

    async def warm_up(self) -> float:
        """Pay litellm's lazy loading now, against a local server, not on a customer."""
        started = time.perf_counter()
        await _warm_code_paths(self.config)
        for name in self.config.model_names:
            try:
                await self._router.acompletion(
                    model=name, messages=[{"role": "user", "content": "hola"}],
                    mock_response="ok", metadata={_META_KEY: "warm-up"},
                )
            except Exception:  # noqa: BLE001, S110 - warming is best effort
                pass
        return time.perf_counter() - started


async def _warm_code_paths(config: ChainConfig) -> None:
    """A throwaway router on loopback servers: success, fallback, and each provider's code."""
    server = await asyncio.to_thread(ScriptedServer(default=Behaviour.answer("ok")).start)
    failing = await asyncio.to_thread(ScriptedServer(default=Behaviour.error(500)).start)
    providers = sorted({d.provider for d in config.model_list} - {"openai"})

    def params(model: str, base: str) -> dict[str, Any]:
        return {"model": model, "api_base": base, "api_key": "warm", "timeout": 2,
                "max_retries": 0}

    model_list: list[dict[str, Any]] = [
        {"model_name": "warm-fail", "litellm_params": params("openai/gpt-4o-mini", failing.url)},
        {"model_name": "warm-ok", "litellm_params": params("openai/gpt-4o-mini", server.url)},
    ]
    for provider in providers:
        model = next(d for d in config.model_list if d.provider == provider)
        model_list.append({"model_name": f"warm-{provider}",
                           "litellm_params": params(model.litellm_params["model"], server.url)})
    router = Router(model_list=model_list, fallbacks=[{"warm-fail": ["warm-ok"]}], num_retries=0)
    try:
        for name in ["warm-fail", "warm-ok", *[f"warm-{p}" for p in providers]]:
            try:
                await router.acompletion(
                    model=name, messages=[{"role": "user", "content": "hola"}], max_tokens=4
                )
            except Exception:  # noqa: BLE001, S110 - other wire formats fail to parse: fine
                pass
    finally:
        router.discard()  # type: ignore[no-untyped-call]
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(failing.stop)


def _cost(
    reported: object, params: dict[str, Any], prompt: int, completion: int
) -> float | None:
    if isinstance(reported, int | float) and reported > 0:
        return float(reported)
    per_in, per_out = params.get("input_cost_per_token"), params.get("output_cost_per_token")
    if isinstance(per_in, int | float) and isinstance(per_out, int | float):
        return float(per_in) * prompt + float(per_out) * completion
    try:
        cost_in, cost_out = litellm.cost_per_token(
            model=str(params.get("model", "")), prompt_tokens=prompt, completion_tokens=completion
        )
    except Exception:  # noqa: BLE001 - not in the offline cost map: cost unknown
        return None
    return float(cost_in) + float(cost_out)


def _retry_after(exc: BaseException) -> float | None:
    headers: Any = getattr(exc, "litellm_response_headers", None)
    if not headers:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _translate(exc: BaseException, model_name: str) -> LLMError:
    provider = getattr(exc, "llm_provider", None)
    model = getattr(exc, "model", None) or model_name
    text = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    if isinstance(exc, Timeout):
        return LLMTimeout(text, provider=provider, model=model)
    if isinstance(exc, RateLimitError):
        return LLMRateLimited(text, provider=provider, model=model, retry_after=_retry_after(exc))
    if isinstance(exc, APIResponseValidationError):
        return LLMBadResponse(text, provider=provider, model=model)
    if "No deployments available" in str(exc):
        return LLMUnavailable(f"every deployment is cooling down: {text}", model=model)
    return LLMUnavailable(text, provider=provider, model=model)


def provider_of(deployment: Deployment) -> str:
    """The provider litellm infers for a deployment (``groq``, ``openai``, …)."""
    try:
        return str(litellm.get_llm_provider(deployment.litellm_params["model"])[1])
    except Exception:  # noqa: BLE001 - unknown provider: show what was written
        return deployment.provider


async def transcribe_audio(
    *,
    model: str,
    filename: str,
    data: bytes,
    mime_type: str,
    language: str,
    api_base: str | None,
    api_key: str | None,
    timeout: float,
) -> str:
    """A provider's transcription API through ``litellm.atranscription`` (no hidden retries).

    Every litellm error derives from ``openai.OpenAIError``; those, and transport errors
    that come through unwrapped, become ``LLMUnavailable``.
    """
    import httpx
    from openai import OpenAIError

    try:
        response = await litellm.atranscription(
            model=model,
            file=(filename, data, mime_type),
            language=language,
            api_base=api_base,
            api_key=api_key,
            timeout=timeout,
            max_retries=0,
        )
    except (OpenAIError, httpx.HTTPError, TimeoutError, ConnectionError) as exc:
        raise LLMUnavailable(
            f"{model}: {type(exc).__name__}: {exc}"[:500], model=model
        ) from exc
    return str(getattr(response, "text", "") or "").strip()
