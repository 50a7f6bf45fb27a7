"""Intent routing, staged: rules, then the embedding classifier, then the LLM.

Rules are sure or silent. The embedding classifier compares the message with
labelled examples stored in the knowledge base (admins extend them); its
examples are reloaded when the knowledge-base revision changes. Only when it is
unsure, and an ``IntentClassifier`` (LLM) is configured, does the LLM decide.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bot.answering.generation import IntentClassifier
from bot.answering.rules import Intent, Routed, route_rules
from bot.logs import get_logger
from knowledge.embeddings import Embedder, Vector
from knowledge.intents import Classified, IntentExamples, NearestExamples
from knowledge.requests import RequestModel, request_text
from knowledge.store import KnowledgeStore

log = get_logger("atiende.intents")

LABELS: tuple[str, ...] = tuple(i.value for i in Intent)
LLM_DEADLINE_SECONDS = 2.5
# what a warm-up embeds: a question no rule answers, in no business's words
WARM_TEXT = "tengo una pregunta sobre como funciona"


@dataclass(frozen=True, slots=True)
class RoutedText:
    routed: Routed
    vector: Vector | None  # the message's embedding, reused by retrieval
    scores: dict[str, float] = field(default_factory=dict)  # the classifier's, per label
    # the probability that the message asks for what only a person can do (buying now,
    # one's own records, a complaint), by ``knowledge.requests``; None without that model
    request: float | None = None
    # which of them, if it is one (a reason of ``knowledge.requests.REASONS``); None
    # without that model or without the second model's vector
    request_kind: str | None = None

    def margin(self, label: str) -> float:
        """How far ``label`` leads the best other label (negative when it trails)."""
        if label not in self.scores:
            return -1.0
        others = [v for k, v in self.scores.items() if k != label]
        return self.scores[label] - max(others, default=0.0)


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
        second: Embedder | None = None,
        requests: RequestModel | None = None,
    ) -> None:
        self._store = store
        self._requests = requests
        self._examples = examples
        self._classifier = classifier
        self._second = second
        self._second_nearest: NearestExamples | None = None
        self._confident = confident
        self._poll = poll_seconds
        self._nearest: NearestExamples | None = None
        self._revision = -1
        self._checked_at = 0.0
        self._lock = asyncio.Lock()

    async def warm(self) -> None:
        """Load both models and the intent examples now (a worker at start): loading
        takes ~3 s of CPU that the first customer would otherwise wait for."""
        await self._store.embedder.embed([WARM_TEXT])
        await self._current()
        if self._second is not None:
            await _query_vector(self._second, WARM_TEXT)

    async def route(self, text: str, *, second: bool = True) -> RoutedText:
        """The intent of ``text``; ``second=False`` asks the first model alone (no e5:
        the cheap first look of a cascade)."""
        ruled = route_rules(text)
        if ruled is not None:
            return RoutedText(ruled, None)
        vector = (await self._store.embedder.embed([text]))[0]
        nearest = await self._current()
        found = nearest.classify(vector) if nearest is not None else None
        second_vector: Vector | None = None
        if second and self._second is not None and (
                self._requests is not None or (found is not None
                                               and self._second_nearest is not None)):
            second_vector = await _query_vector(self._second, text)
        if found is not None and second_vector is not None and self._second_nearest is not None:
            # both models' opinions, averaged: e5 reads the form of a request better,
            # USE its topic
            found = _averaged(found, self._second_nearest.classify(second_vector))
        request, kind = (await self._request(text, vector, second_vector)
                         if self._requests is not None else (None, None))
        scores = dict(found.scores or {}) if found is not None else {}
        if found is not None and found.confidence >= self._confident:
            return RoutedText(Routed(_intent(found.label), round(found.confidence, 3),
                                     "embedding"), vector, scores, request, kind)
        if self._classifier is not None:
            deadline = asyncio.get_running_loop().time() + LLM_DEADLINE_SECONDS
            answer = await self._classifier.classify(text, LABELS, deadline=deadline)
            if answer is not None and answer[0] in LABELS:
                return RoutedText(Routed(Intent(answer[0]), round(answer[1], 3), "llm"), vector,
                                  scores, request, kind)
        if found is not None:
            return RoutedText(Routed(_intent(found.label), round(found.confidence, 3),
                                     "embedding"), vector, scores, request, kind)
        return RoutedText(Routed(Intent.QUESTION, 0.0, "default"), vector, scores, request,
                          kind)

    async def _request(self, text: str, vector: Vector, second_vector: Vector | None
                       ) -> tuple[float, str | None]:
        """The request model's probability and which request it would be, read on the text
        with its personal data masked (a phone number left for a call back is not a
        request for one's records)."""
        assert self._requests is not None
        masked = request_text(text)
        if masked != text:
            vector = (await self._store.embedder.embed([masked]))[0]
            if second_vector is not None and self._second is not None:
                second_vector = await _query_vector(self._second, masked)
        return (self._requests.probability(vector, second_vector),
                self._requests.kind(vector, second_vector))

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
                if self._second is not None:
                    self._second_nearest = NearestExamples(
                        await self._examples.second_vectors(self._second))
                self._revision = revision
                log.info("intents.loaded", examples=len(vectors), revision=revision)
            self._checked_at = time.monotonic()
            return self._nearest


def _intent(label: str) -> Intent:
    """An example's label as an intent (an admin's own label counts as a question)."""
    try:
        return Intent(label)
    except ValueError:
        return Intent.QUESTION


async def _query_vectors(embedder: Embedder, texts: list[str]) -> list[Vector]:
    embed_queries = getattr(embedder, "embed_queries", None)
    if embed_queries is not None:
        return [list(v) for v in await embed_queries(texts)]
    return await embedder.embed(texts)


async def _query_vector(embedder: Embedder, text: str) -> Vector:
    return (await _query_vectors(embedder, [text]))[0]


def _averaged(first: Classified, second: Classified | None) -> Classified:
    if second is None or not first.scores or not second.scores:
        return first
    labels = set(first.scores) | set(second.scores)
    scores = {
        label: (first.scores.get(label, 0.0) + second.scores.get(label, 0.0)) / 2
        for label in labels
    }
    best = sorted(scores.items(), key=lambda kv: -kv[1])
    runner = best[1][1] if len(best) > 1 else 0.0
    return Classified(best[0][0], max(0.0, min(1.0, best[0][1])), best[0][1] - runner, scores)
