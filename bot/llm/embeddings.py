"""A provider's embedding model behind the knowledge base's ``Embedder`` port (via litellm).

``ATIENDE_KNOWLEDGE__EMBEDDING_MODEL=openai/text-embedding-3-small`` (plus a key,
and an api base for OpenAI-compatible servers) replaces the offline USE model.
The vectors' name, stored with each one, is ``litellm:<model>`` (``@<dimensions>``
when a size is asked for), so changing either re-embeds the knowledge base.
Provider failures become ``knowledge.errors.EmbeddingError`` with the reason.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Sequence

from bot.errors import LLMError
from bot.llm.adapter import EmbeddingClient
from knowledge.config import KnowledgeConfig
from knowledge.embeddings import Vector
from knowledge.errors import EmbeddingError
from knowledge.vectors import check_model_name

ENV_REFERENCE = "os.environ/"


def resolve_secret(value: str | None) -> str | None:
    """A literal key, or litellm's ``os.environ/NAME`` reference read from the environment."""
    if value and value.startswith(ENV_REFERENCE):
        name = value.removeprefix(ENV_REFERENCE)
        resolved = os.environ.get(name)
        if not resolved:
            raise EmbeddingError(f"embedding api key: environment variable {name} is not set")
        return resolved
    return value or None


class ProviderEmbedder:
    """Embeds through ``litellm.aembedding`` in batches, with a small cache for questions."""

    def __init__(self, config: KnowledgeConfig, *, cache_size: int = 2048) -> None:
        if not config.embedding_model:
            raise EmbeddingError("no embedding model configured")
        self._model = config.embedding_model.strip()
        key = config.embedding_api_key
        self._api_key = key.get_secret_value() if key is not None else None
        self._dimensions = config.embedding_dimensions
        self._learned: int | None = None
        self._client = EmbeddingClient(
            model=self._model, api_base=config.embedding_api_base or None,
            dimensions=self._dimensions, timeout=config.embedding_timeout,
            max_retries=config.embedding_retries,
        )
        self._batch = config.embedding_batch
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self._cache_size = cache_size
        suffix = f"@{self._dimensions}" if self._dimensions else ""
        self._name = check_model_name(f"litellm:{self._model}{suffix}")

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimensions(self) -> int:
        """Asked-for size, else what the provider returned so far (0 before any call)."""
        return self._dimensions or self._learned or 0

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        wanted = [t for t in dict.fromkeys(texts) if t not in self._cache]
        fresh: dict[str, Vector] = {}
        for start in range(0, len(wanted), self._batch):
            part = wanted[start : start + self._batch]
            for text, vector in zip(part, await self._call(part), strict=True):
                fresh[text] = vector
        for text, vector in fresh.items():
            self._cache[text] = vector
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return [fresh.get(text) or self._cache[text] for text in texts]

    async def aclose(self) -> None:
        """Close the provider's HTTP connections."""
        await self._client.aclose()

    async def _call(self, texts: list[str]) -> list[Vector]:
        try:
            raw = await self._client.embed(
                [t if t.strip() else "." for t in texts],  # providers refuse ""
                api_key=resolve_secret(self._api_key),
            )
        except LLMError as exc:
            raise EmbeddingError(f"embedding model {self._model} failed: {exc}") from exc
        return [self._checked(vector) for vector in raw]

    def _checked(self, vector: list[float]) -> Vector:
        expected = self.dimensions
        if not vector or (expected and len(vector) != expected):
            raise EmbeddingError(
                f"embedding model {self._model} returned {len(vector)} dimensions, "
                f"expected {expected or 'at least 1'}"
            )
        norm = math.sqrt(sum(v * v for v in vector))
        if not math.isfinite(norm) or norm == 0:
            raise EmbeddingError(f"embedding model {self._model} returned a zero or invalid vector")
        self._learned = len(vector)
        return [v / norm for v in vector]
