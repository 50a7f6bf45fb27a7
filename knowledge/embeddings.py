"""The embedding port, and a dependency-free lexical embedder.

An ``Embedder`` turns texts into unit vectors of ``dimensions`` floats. Its
``name`` is stored with every vector; when the configured embedder's name
differs from the stored one, the store re-embeds (``KnowledgeStore.reembed``).
The default adapter (USE multilingual v3, 512 dimensions) lives in
``knowledge.usem``; a provider's model of any dimension plugs in through litellm
(``bot.llm.embeddings.ProviderEmbedder``); each model gets its own vector index
(``knowledge.vectors``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Protocol

from knowledge.models import DIMENSIONS
from knowledge.text import words

Vector = list[float]


class Embedder(Protocol):
    """Turns texts into L2-normalized vectors of ``dimensions`` floats."""

    @property
    def name(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[Vector]: ...


def normalize(vector: Sequence[float]) -> Vector:
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class HashingEmbedder:
    """Character trigrams hashed into 512 buckets: no model, purely lexical.

    Useful where no model can be installed and as a second, cheap model for
    tests of re-embedding; far weaker than USE on paraphrases.
    """

    def __init__(self, dimensions: int = DIMENSIONS) -> None:
        self._dimensions = dimensions

    @property
    def name(self) -> str:
        return f"hashing-trigram-{self._dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> Vector:
        vector = [0.0] * self._dimensions
        for word in words(text):
            padded = f" {word} "
            for i in range(len(padded) - 2):
                digest = hashlib.blake2b(padded[i : i + 3].encode(), digest_size=4).digest()
                vector[int.from_bytes(digest, "little") % self._dimensions] += 1.0
        return normalize(vector)
