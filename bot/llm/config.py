"""The chain configuration: litellm's own Router YAML plus an ``atiende:`` block.

```yaml
model_list: [...]        # exactly litellm's model_list
router_settings: {...}   # passed to litellm.Router (fallbacks, num_retries, ...)
atiende: {answer_model: primary, intent_model: fast, summary_model: fast, budget_seconds: 8}
```

Secrets (``api_key`` and friends) may be written literally, as litellm's
``os.environ/NAME`` references, or, when stored by the admin page, encrypted
(``fernet:…``). In memory a :class:`ChainConfig` holds them in clear; only
:mod:`bot.llm.secrets` turns them into stored or masked forms.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.errors import LLMConfigError

SECRET_PARAMS = frozenset(
    {
        "api_key",
        "aws_secret_access_key",
        "aws_session_token",
        "vertex_credentials",
        "azure_ad_token",
        "client_secret",
    }
)

# Our defaults, used when router_settings does not say otherwise. A timeout or a 429
# puts a deployment in cooldown at once: a hanging provider must cost a customer its
# timeout once, not on every message, and a rate-limited key gives way to the next.
DEFAULT_ROUTER_SETTINGS: dict[str, Any] = {
    "num_retries": 0,
    "timeout": 6,
    "cooldown_time": 30,
    "allowed_fails": 2,
    "allowed_fails_policy": {"TimeoutErrorAllowedFails": 0, "RateLimitErrorAllowedFails": 0},
}
_ROUTER_KEYS = frozenset(
    {
        "fallbacks",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "default_fallbacks",
        "num_retries",
        "timeout",
        "stream_timeout",
        "allowed_fails",
        "allowed_fails_policy",
        "retry_policy",
        "cooldown_time",
        "disable_cooldowns",
        "retry_after",
        "routing_strategy",
        "routing_strategy_args",
        "model_group_alias",
        "enable_pre_call_checks",
        "default_max_parallel_requests",
        "max_fallbacks",
    }
)


class Deployment(BaseModel):
    """One entry of litellm's ``model_list`` (several with one name = several keys)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    model_name: str = Field(min_length=1, max_length=100)
    litellm_params: dict[str, Any]
    model_info: dict[str, Any] | None = None

    @field_validator("litellm_params")
    @classmethod
    def _has_model(cls, value: dict[str, Any]) -> dict[str, Any]:
        model = value.get("model")
        if not isinstance(model, str) or not model.strip():
            raise ValueError("litellm_params.model is required (e.g. openai/gpt-4o-mini)")
        return value

    @property
    def provider(self) -> str:
        model = str(self.litellm_params["model"])
        return model.split("/", 1)[0] if "/" in model else "openai"


class AtiendeBlock(BaseModel):
    """What the bot asks of the chain (model names refer to ``model_list``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    answer_model: str | None = None
    intent_model: str | None = None
    summary_model: str | None = None
    budget_seconds: float = Field(default=8.0, gt=0, le=120)
    memory_tokens: int = Field(default=1200, ge=0, le=32000)
    max_answer_tokens: int = Field(default=350, ge=16, le=4000)
    temperature: float = Field(default=0.2, ge=0, le=2)
    warm_up: bool = True


class ChainConfig(BaseModel):
    """The whole chain, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_list: list[Deployment] = Field(min_length=1)
    router_settings: dict[str, Any] = Field(default_factory=dict)
    atiende: AtiendeBlock = Field(default_factory=AtiendeBlock)

    @model_validator(mode="after")
    def _consistent(self) -> ChainConfig:
        names = self.model_names
        unknown = set(self.router_settings) - _ROUTER_KEYS
        if unknown:
            raise ValueError(f"router_settings: unsupported keys {sorted(unknown)}")
        for entry in self.router_settings.get("fallbacks") or []:
            if not isinstance(entry, dict):
                raise ValueError("router_settings.fallbacks: entries look like {primary: [backup]}")
            for source, targets in entry.items():
                if not isinstance(targets, list):
                    raise ValueError(f"router_settings.fallbacks.{source}: a list of model names")
                for name in [source, *targets]:
                    if name not in names:
                        raise ValueError(f"router_settings.fallbacks: unknown model_name {name!r}")
        for field_name in ("answer_model", "intent_model", "summary_model"):
            name = getattr(self.atiende, field_name)
            if name is not None and name not in names:
                raise ValueError(f"atiende.{field_name}: unknown model_name {name!r}")
        return self

    @property
    def model_names(self) -> list[str]:
        """Distinct model names, in the order of ``model_list``."""
        return list(dict.fromkeys(d.model_name for d in self.model_list))

    def model_for(self, purpose: str) -> str:
        """The model_name asked first for ``answer``, ``intent`` or ``summary``."""
        chosen = {
            "answer": self.atiende.answer_model,
            "intent": self.atiende.intent_model or self.atiende.answer_model,
            "summary": self.atiende.summary_model or self.atiende.answer_model,
        }.get(purpose)
        return chosen or self.model_names[0]

    def chain_for(self, name: str) -> list[str]:
        """``name`` followed by its fallbacks, in the order litellm tries them."""
        order = [name]
        for entry in self.router_settings.get("fallbacks") or []:
            for target in entry.get(name, []):
                if target not in order:
                    order.append(target)
        return order

    def router_kwargs(self) -> dict[str, Any]:
        """``router_settings`` with our defaults filled in."""
        merged = dict(DEFAULT_ROUTER_SETTINGS)
        merged.update(self.router_settings)
        return merged

    def secrets(self) -> Iterator[tuple[int, str, str]]:
        """(deployment index, param, value) for every secret-bearing parameter."""
        for index, deployment in enumerate(self.model_list):
            for key, value in deployment.litellm_params.items():
                if key in SECRET_PARAMS and isinstance(value, str) and value:
                    yield index, key, value

    def to_document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_document(), sort_keys=False, allow_unicode=True)


def parse_chain_config(document: object) -> ChainConfig:
    """Validate a parsed YAML/JSON document; errors name the offending field."""
    if not isinstance(document, dict):
        raise LLMConfigError("the LLM configuration must be a mapping with model_list")
    try:
        return ChainConfig.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise LLMConfigError(f"{where or 'config'}: {first.get('msg')}") from exc


def parse_chain_yaml(text: str) -> ChainConfig:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LLMConfigError(f"not valid YAML: {exc}") from exc
    return parse_chain_config(document)


def load_chain_file(path: Path) -> ChainConfig:
    """Read ``ATIENDE_LLM_CONFIG``; a missing or bad file raises :class:`LLMConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LLMConfigError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        return parse_chain_yaml(text)
    except LLMConfigError as exc:
        raise LLMConfigError(f"{path}: {exc}") from exc
