"""The plain-fusion retrieval baseline that ``atiende eval`` prints beside the bot.

Nothing but the two embedding models that ship in packages (USE multilingual v3 and
multilingual-e5-small) and BM25, over paragraph chunks with the article title
prefixed (a catalog row is one chunk: name, description, category); each signal's
scores are z-normalised per question over all chunks and summed, and sources are
ranked by their best chunk. No rules, no thresholds, no database: it runs in memory on
the set's own files, so it cannot share a bug with the bot's retrieval.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import snowballstemmer

from knowledge.documents import ArticleDoc, ProductDoc
from knowledge.e5 import E5Embedder
from knowledge.text import words
from knowledge.usem import UsemEmbedder

_BLANK = re.compile(r"\n\s*\n")
_FRONT = re.compile(r"^#+\s*")


@dataclass(frozen=True, slots=True)
class BaseChunk:
    source: str
    text: str


def paragraph_chunks(articles: Sequence[ArticleDoc], products: Sequence[ProductDoc]
                     ) -> list[BaseChunk]:
    chunks: list[BaseChunk] = []
    for article in articles:
        for block in _BLANK.split(article.body):
            block = _FRONT.sub("", block.strip())
            if block:
                chunks.append(BaseChunk(article.id, f"{article.title}. {block}"))
    for product in products:
        chunks.append(BaseChunk(
            product.sku, f"{product.name}. {product.description} {product.category}".strip()
        ))
    return chunks


class BM25:
    """Okapi BM25 (k1 1.5, b 0.75) over folded, Spanish-stemmed words."""

    def __init__(self, texts: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> None:
        self._stem = snowballstemmer.stemmer("spanish")
        self._docs = [Counter(self.tokens(t)) for t in texts]
        self._lengths = np.array([sum(d.values()) for d in self._docs], dtype=float)
        self._avg = float(self._lengths.mean()) if len(self._docs) else 0.0
        frequency: Counter[str] = Counter()
        for doc in self._docs:
            frequency.update(doc.keys())
        n = len(self._docs)
        self._idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in frequency.items()}
        self._k1, self._b = k1, b

    def tokens(self, text: str) -> list[str]:
        return list(self._stem.stemWords(words(text)))

    def scores(self, query: str) -> np.ndarray:
        out = np.zeros(len(self._docs))
        norm = self._k1 * (1 - self._b + self._b * self._lengths / (self._avg or 1.0))
        for word in set(self.tokens(query)):
            idf = self._idf.get(word)
            if idf is None:
                continue
            tf = np.array([doc.get(word, 0) for doc in self._docs], dtype=float)
            out += idf * tf * (self._k1 + 1) / (tf + norm)
        return out


def _z(scores: np.ndarray) -> np.ndarray:
    spread = float(scores.std())
    return (scores - scores.mean()) / spread if spread > 0 else np.zeros_like(scores)


class PlainFusion:
    """Rank a set's sources for a question the baseline way (see the module docstring)."""

    def __init__(self, chunks: list[BaseChunk], usem: UsemEmbedder, e5: E5Embedder) -> None:
        self._chunks = chunks
        self._usem, self._e5 = usem, e5
        self._bm25 = BM25([c.text for c in chunks])
        self._use_matrix: np.ndarray | None = None
        self._e5_matrix: np.ndarray | None = None

    async def _matrices(self) -> tuple[np.ndarray, np.ndarray]:
        if self._use_matrix is None or self._e5_matrix is None:
            texts = [c.text for c in self._chunks]
            self._use_matrix = np.array(await self._usem.embed(texts))
            self._e5_matrix = np.array(await self._e5.embed(texts))
        return self._use_matrix, self._e5_matrix

    async def rank(self, question: str) -> list[str]:
        """Source ids (article ids and skus), best first."""
        if not self._chunks:
            return []
        use_matrix, e5_matrix = await self._matrices()
        use_q = np.array((await self._usem.embed([question]))[0])
        e5_q = np.array((await self._e5.embed_queries([question]))[0])
        total = _z(use_matrix @ use_q) + _z(e5_matrix @ e5_q) + _z(self._bm25.scores(question))
        best: dict[str, float] = {}
        for chunk, score in zip(self._chunks, total.tolist(), strict=True):
            if score > best.get(chunk.source, -math.inf):
                best[chunk.source] = score
        return sorted(best, key=lambda s: -best[s])
