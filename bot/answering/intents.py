"""Intent routing, staged: rules, then the embedding classifier, then the LLM.

Rules are sure or silent. The embedding classifier compares the message with
labelled examples stored in the knowledge base (admins extend them); its
examples are reloaded when the knowledge-base revision changes. Only when it is
unsure, and an ``IntentClassifier`` (LLM) is configured, does the LLM decide.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bot.answering.generation import IntentClassifier
from bot.answering.rules import Intent, Routed, route_rules
from bot.logs import get_logger
from knowledge.embeddings import Vector
from knowledge.intents import IntentExamples, NearestExamples
from knowledge.store import KnowledgeStore

log = get_logger("atiende.intents")

LABELS: tuple[str, ...] = tuple(i.value for i in Intent)
LLM_DEADLINE_SECONDS = 2.5


@dataclass(frozen=True, slots=True)
class RoutedText:
    routed: Routed
    vector: Vector | None  # the message's embedding, reused by retrieval


class IntentRouter:
    """Decides the intent of a customer message, cheapest stage first."""

    def __init__(
        self,
        *,
        store: KnowledgeStore,
        examples: IntentExamples,
        classifier: IntentClassifier | None = None,
        confident: float = 0.62,
        poll_seconds: float = 1.0,
    ) -> None:
        self._store = store
        self._examples = examples
        self._classifier = classifier
        self._confident = confident
        self._poll = poll_seconds
        self._nearest: NearestExamples | None = None
        self._revision = -1
        self._checked_at = 0.0
        self._lock = asyncio.Lock()

    async def route(self, text: str) -> RoutedText:
        ruled = route_rules(text)
        if ruled is not None:
            return RoutedText(ruled, None)
        vector = (await self._store.embedder.embed([text]))[0]
        nearest = await self._current()
        found = nearest.classify(vector) if nearest is not None else None
        if found is not None and found.confidence >= self._confident:
            return RoutedText(Routed(Intent(found.label), round(found.confidence, 3),
                                     "embedding"), vector)
        if self._classifier is not None:
            deadline = asyncio.get_running_loop().time() + LLM_DEADLINE_SECONDS
            answer = await self._classifier.classify(text, LABELS, deadline=deadline)
            if answer is not None and answer[0] in LABELS:
                return RoutedText(Routed(Intent(answer[0]), round(answer[1], 3), "llm"), vector)
        if found is not None:
            return RoutedText(Routed(Intent(found.label), round(found.confidence, 3),
                                     "embedding"), vector)
        return RoutedText(Routed(Intent.QUESTION, 0.0, "default"), vector)

    async def _current(self) -> NearestExamples | None:
        """The classifier for the current revision (checked at most every ``poll`` s)."""
        now = time.monotonic()
        if self._nearest is not None and now - self._checked_at < self._poll:
            return self._nearest
        async with self._lock:
            if self._nearest is not None and time.monotonic() - self._checked_at < self._poll:
                return self._nearest
            revision = await self._store.revision()
            if self._nearest is None or revision != self._revision:
                vectors = await self._examples.vectors()
                if not vectors:
                    await self._examples.seed()
                    vectors = await self._examples.vectors()
                    revision = await self._store.revision()
                self._nearest = NearestExamples(vectors)
                self._revision = revision
                log.info("intents.loaded", examples=len(vectors), revision=revision)
            self._checked_at = time.monotonic()
            return self._nearest
