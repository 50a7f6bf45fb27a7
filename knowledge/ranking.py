"""How retrieved passages become ranked sources: fused scores, per-source features, a
linear ranker and a calibrated confidence.

Every candidate passage carries three raw signals: cosine similarity to the question
under the primary model (USE), under the second model (e5; missing until its vector is
filled) and BM25 over the full-text lexemes. Each signal is z-normalised over the
candidate pool of the question (so no model's scale dominates, and the figures mean the
same on any base), summed into a fused score; a source (article or catalog product) is
described by its best passages, by how well the question matches the example
questions its admins wrote, and by how many of its passages came back. A linear model
over those features ranks the sources, and a logistic one turns the best source's
features into the probability that it answers the question.

The weights are not about any business: they were fitted with ``atiende eval fit`` on
all the evaluation sets together (leave-one-set-out checked; BENCHMARKS.md) and are
the same for every knowledge base.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

__all__ = [
    "shipped_ranker",
    "Candidate",
    "QuestionContext",
    "RankedSource",
    "Ranker",
    "SourceFeatures",
    "FEATURES",
]

FEATURES = (
    "fused_best", "fused_second", "use_best", "e5_best", "bm25_best",
    "questions_use", "questions_e5", "passages", "product", "product_hint",
)
# Absolute (not pool-relative) figures of a source, for the confidence: the best raw
# cosines of its passages and of its example questions, and its best BM25 share.
ABSOLUTE = ("use_raw", "e5_raw", "bm25_raw", "questions_use_raw", "questions_e5_raw")
# How many of the ranked sources get a confidence (the rest keep 0.0).
CONFIDENT_SOURCES = 5
# What a missing signal counts as, in standard deviations (a source with no example
# question; a second-model cosine when fewer than two candidates have one, else it is
# imputed: ``_second_imputed``).
_MISSING = -1.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """One retrieved chunk with its raw signals."""

    chunk_id: int
    source_kind: str  # article | product
    source_id: str
    title: str
    heading: str
    role: str  # passage | question
    text: str
    use: float  # cosine, primary model
    e5: float | None  # cosine, second model (None: not filled yet, or no second model)
    bm25: float  # 0 when no word matched


@dataclass(frozen=True, slots=True)
class QuestionContext:
    """What is known about the question beyond the passages: the classifier's catalog
    hint, the share of its words the base never uses, whether it is in English (whose
    words a Spanish base never uses, and still may answer), and its form (asks an
    amount, whether something is sold or in stock, how something works:
    ``knowledge.answer_types.question_form``)."""

    catalog_hint: float = 0.0
    unknown_share: float = 0.0
    english: bool = False
    form: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class SourceFeatures:
    values: tuple[float, ...]
    absolute: tuple[float, ...] = ()

    def named(self) -> dict[str, float]:
        return dict(zip(FEATURES + ABSOLUTE, self.values + self.absolute, strict=True))


@dataclass(frozen=True, slots=True)
class RankedSource:
    """A source with its passages best first (``fused`` per passage, same order)."""

    source_kind: str
    source_id: str
    title: str
    score: float
    features: SourceFeatures
    passages: tuple[Candidate, ...]
    fused: tuple[float, ...]
    confidence: float = 0.0


def _mean_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _z(values: Sequence[float | None]) -> list[float]:
    present = [v for v in values if v is not None]
    if len(present) < 2:
        return [0.0 if v is not None else _MISSING for v in values]
    mean, spread = _mean_spread(present)
    if spread <= 1e-9:
        return [0.0 if v is not None else _MISSING for v in values]
    return [(v - mean) / spread if v is not None else _MISSING for v in values]


@dataclass(frozen=True)
class Ranker:
    """The fitted weights (see the module docstring); ``Ranker()`` is the shipped model."""

    weights: tuple[float, ...] = (
        0.234, 0.161, 0.180, 0.486, 0.171, 0.146, 0.388, 0.540, 0.933, 1.219)
    bias: float = 0.0
    # logistic confidence over the best source's features and its lead over the second
    confidence_weights: tuple[float, ...] = field(
        default=(-0.013, 0.333, 1.156, 7.776, 30.071, 4.841, 1.876, 0.509, -4.694, 1.203))
    confidence_bias: float = -28.999
    signal_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # use, e5, bm25
    # logistic "the catalog answers this" over the question's catalog hint and how the
    # best product compares with the best article (``catalog_inputs``)
    catalog_weights: tuple[float, ...] = (
        28.516, 0.090, 0.266, 0.058, 3.388, 21.382, 3.715, 1.745, 1.988, -2.193)
    catalog_bias: float = -1.653
    # the weights for a pool without the second model's cosines (turned off, or not
    # filled yet): fitted on the same questions with those cosines left out
    first_only: Ranker | None = None

    def rank(self, candidates: Sequence[Candidate], *,
             context: QuestionContext | None = None) -> list[RankedSource]:
        """Sources best first; the context's catalog hint (positive when the question asks
        a price, stock or whether something is sold, negative when it asks how something
        works) weighs catalog products against articles."""
        context = context or QuestionContext()
        if self.first_only is not None and not any(c.e5 is not None for c in candidates):
            return self.first_only.rank(candidates, context=context)
        catalog_hint = context.catalog_hint
        passages = _second_imputed([c for c in candidates if c.role != "question"])
        questions = _second_imputed([c for c in candidates if c.role == "question"])
        wu, we, wb = self.signal_weights
        zu, ze, zb = (_z([c.use for c in passages]), _z([c.e5 for c in passages]),
                      _z([c.bm25 for c in passages]))
        fused = [wu * u + we * e + wb * b for u, e, b in zip(zu, ze, zb, strict=True)]
        qu, qe = _z([c.use for c in questions]), _z([c.e5 for c in questions])
        best_q: dict[str, tuple[float, float, float, float]] = {}
        for c, u, e in zip(questions, qu, qe, strict=True):
            old = best_q.get(c.source_id, (-9.0, -9.0, 0.0, 0.0))
            best_q[c.source_id] = (max(old[0], u), max(old[1], e), max(old[2], c.use),
                                   max(old[3], c.e5 or 0.0))
        by_source: dict[str, list[int]] = {}
        for index, c in enumerate(passages):
            by_source.setdefault(c.source_id, []).append(index)
        ranked = []
        for source_id, indexes in by_source.items():
            order = sorted(indexes, key=lambda i: -fused[i])
            first = order[0]
            second = fused[order[1]] if len(order) > 1 else fused[first] - 1.0
            q = best_q.get(source_id, (_MISSING, _MISSING, 0.0, 0.0))
            absolute = (
                max(passages[i].use for i in indexes),
                max((passages[i].e5 or 0.0) for i in indexes),
                max(passages[i].bm25 for i in indexes), q[2], q[3],
            )
            features = SourceFeatures((
                fused[first], second, max(zu[i] for i in indexes),
                max(ze[i] for i in indexes), max(zb[i] for i in indexes), q[0], q[1],
                math.log(len(indexes)),
                1.0 if head_kind(passages, first) == "product" else 0.0,
                catalog_hint if head_kind(passages, first) == "product" else 0.0,
            ), absolute)
            score = self.bias + sum(
                w * v for w, v in zip(self.weights, features.values, strict=True))
            head = passages[first]
            ranked.append(RankedSource(
                head.source_kind, source_id, head.title, score, features,
                tuple(passages[i] for i in order), tuple(fused[i] for i in order),
            ))
        ranked.sort(key=lambda s: (-s.score, s.source_id))
        # Article or catalog is decided first, then the best of that kind leads: a how-to
        # that names a product is answered by the article, a price by the product.
        wants_catalog = self.catalog_probability(ranked, catalog_hint, context.form) >= 0.5
        ranked.sort(key=lambda s: (not ((s.source_kind == "product") == wants_catalog),
                                   -s.score, s.source_id))
        return _asked_verbatim_first(self._with_confidence(ranked, context))

    def catalog_probability(self, ranked: Sequence[RankedSource], catalog_hint: float,
                            form: tuple[float, float, float]) -> float:
        """How likely the catalog, not an article, answers the question."""
        values = catalog_inputs(ranked, catalog_hint, form)
        if values is None:  # only one kind came back
            return 1.0 if ranked and ranked[0].source_kind == "product" else 0.0
        logit = self.catalog_bias + sum(
            w * v for w, v in zip(self.catalog_weights, values, strict=True))
        return _sigmoid(logit)

    def _with_confidence(self, ranked: list[RankedSource], context: QuestionContext
                         ) -> list[RankedSource]:
        if not ranked:
            return ranked
        same = [s for s in ranked[1:] if s.source_kind == ranked[0].source_kind]
        lead = ranked[0].score - same[0].score if same else 2.0
        out = list(ranked)
        # only the first sources get one: the decision reads the first's, and a big base
        # brings a hundred sources into the pool
        for position, source in enumerate(ranked[:CONFIDENT_SOURCES]):
            values = confidence_inputs(source, lead if position == 0 else 0.0, context)
            logit = self.confidence_bias + sum(
                w * v for w, v in zip(self.confidence_weights, values, strict=True))
            confidence = _sigmoid(logit)
            out[position] = RankedSource(
                source.source_kind, source.source_id, source.title, source.score,
                source.features, source.passages, source.fused, confidence,
            )
        return out


def _second_imputed(candidates: list[Candidate]) -> list[Candidate]:
    """Candidates whose second-model cosine is missing (a passage saved a moment ago, its
    second vector not filled yet) get the one the first model's standing implies: the
    pool's second-model mean plus their first-model z-score times its spread. Counted
    as a bad score instead, a product just edited would drop below the others until
    the vector is filled."""
    missing = [c for c in candidates if c.e5 is None]
    present = [c.e5 for c in candidates if c.e5 is not None]
    if not missing or len(present) < 2:
        return candidates
    mean, spread = _mean_spread(present)
    first = _z([c.use for c in candidates])
    return [c if c.e5 is not None else replace(c, e5=mean + z * spread)
            for c, z in zip(candidates, first, strict=True)]


def _asked_verbatim_first(ranked: list[RankedSource]) -> list[RankedSource]:
    """A question (nearly) word for word one of the example questions an admin wrote for
    a source: that source answers, whatever the passages' own scores (the fitted weights
    see example questions only relative to each other, and one alone scores 0)."""
    asked = [(s.features.absolute[3], i) for i, s in enumerate(ranked)
             if len(s.features.absolute) > 3 and s.features.absolute[3] >= EXAMPLE_MATCH]
    if not asked:
        return ranked
    similarity, index = max(asked)
    best = ranked[index]
    lead = RankedSource(best.source_kind, best.source_id, best.title, best.score,
                        best.features, best.passages, best.fused,
                        max(best.confidence, similarity))
    return [lead, *ranked[:index], *ranked[index + 1:]]


def head_kind(passages: Sequence[Candidate], index: int) -> str:
    return passages[index].source_kind


def confidence_inputs(source: RankedSource, lead: float, context: QuestionContext
                      ) -> tuple[float, ...]:
    """What the confidence looks at: the fused score, the lead over the runner-up,
    whether it is a catalog product, the absolute figures (``ABSOLUTE``), and the share
    of the question's words the base never uses (apart for English questions)."""
    values = source.features.values
    english = 1.0 if context.english else 0.0
    return (values[0], lead, values[8], *source.features.absolute,
            context.unknown_share * (1.0 - english), english)


def catalog_inputs(ranked: Sequence[RankedSource], catalog_hint: float,
                   form: tuple[float, float, float]) -> tuple[float, ...] | None:
    """The catalog hint, then the best product's figures minus the best article's (fused,
    e5 and BM25 standings; raw cosines and BM25 share), then the question's form (asks
    an amount, whether something is sold or in stock, how something works)."""
    product = next((r for r in ranked if r.source_kind == "product"), None)
    article = next((r for r in ranked if r.source_kind != "product"), None)
    if product is None or article is None:
        return None
    p, a = product.features, article.features
    return (
        catalog_hint, p.values[0] - a.values[0], p.values[3] - a.values[3],
        p.values[4] - a.values[4], p.absolute[0] - a.absolute[0],
        p.absolute[1] - a.absolute[1], p.absolute[2] - a.absolute[2], *form,
    )


def _sigmoid(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, logit))))


def shipped_ranker() -> Ranker:
    """The fitted model: with both embedding models, and with the first alone."""
    return Ranker(first_only=Ranker(
        weights=FIRST_ONLY_WEIGHTS, confidence_weights=FIRST_ONLY_CONFIDENCE[0],
        confidence_bias=FIRST_ONLY_CONFIDENCE[1], catalog_weights=FIRST_ONLY_CATALOG[0],
        catalog_bias=FIRST_ONLY_CATALOG[1],
    ))


# The first model's cosine above which a question is an admin's example question of a
# source, reworded at most by typos and punctuation (paraphrases score ~0.7-0.85).
EXAMPLE_MATCH = 0.9

# ``atiende eval --fit`` with the second model's cosines left out of every pool
FIRST_ONLY_WEIGHTS: tuple[float, ...] = (
    0.345, 0.244, 0.385, 0.436, 0.162, 0.458, 0.373, 0.745, 0.868, 1.234)
FIRST_ONLY_CONFIDENCE: tuple[tuple[float, ...], float] = (
    (-0.043, 0.348, 0.870, 9.790, 0.000, 5.185, 2.899, 0.000, -5.585, -0.385),
    -3.411)
FIRST_ONLY_CATALOG: tuple[tuple[float, ...], float] = (
    (31.882, 0.196, 0.000, 0.143, 5.104, 0.000, 3.628, 1.666, 2.143, -1.936), -2.090)
