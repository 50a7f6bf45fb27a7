"""``atiende eval --fit``: fit the ranking and confidence weights on the evaluation sets.

For every question of every set (and, as questions a base must not answer, a sample of
the other sets' questions) it records the candidate pool retrieval returns and the
intent classifier's scores, then fits, with plain numpy:

- the ranker's weights (``knowledge.ranking.Ranker.weights``): a softmax over a
  question's sources, trained to put an acceptable source first;
- the confidence (``confidence_weights``/``confidence_bias``): a logistic regression on
  the best source's features and its lead, trained on whether the base answers the
  question at all (the questions labelled ``no_answer`` and the other businesses'
  questions are the ones it must not answer).

It prints the fitted values and, for an honest figure, the result of fitting on all
sets but one and scoring the one left out, for each set in turn. The weights are pasted
into ``knowledge/ranking.py`` by hand (reviewed like any code change).
"""

from __future__ import annotations

import hashlib
import math
import pickle
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bot.bench.evalsets import EvalSet, SetCase, fresh_database, load_set
from bot.db import create_engine, migrate, session_factory
from bot.i18n import detect_language
from bot.settings import Settings
from bot.wiring.answering import build_answering
from knowledge.answer_types import question_form
from knowledge.e5 import E5Embedder
from knowledge.ranking import (
    Candidate,
    QuestionContext,
    Ranker,
    catalog_inputs,
    confidence_inputs,
)
from knowledge.usem import UsemEmbedder

FOREIGN_PER_SET = 30


@dataclass(frozen=True, slots=True)
class Sample:
    set_name: str
    case: SetCase
    foreign: bool  # a question from another business: this base must not answer it
    scores: dict[str, float]
    pool: tuple[Candidate, ...]
    unknown_share: float = 0.0
    english: bool = False

    @property
    def hint(self) -> float:
        return self.scores.get("product", 0.0) - self.scores.get("question", 0.0)

    @property
    def context(self) -> QuestionContext:
        return QuestionContext(self.hint, self.unknown_share, self.english,
                               question_form(self.case.text))

    @property
    def answerable(self) -> bool:
        return not self.foreign and self.case.expect == "answer" and bool(self.case.sources)


async def collect(settings: Settings, admin_url: str, sets: Sequence[EvalSet]) -> list[Sample]:
    usem, e5 = UsemEmbedder(), E5Embedder()
    rng = random.Random(7)
    samples: list[Sample] = []
    for eval_set in sets:
        foreign = [c for other in sets if other is not eval_set for c in other.cases
                   if c.expect == "answer" and _names_a_product(c, other)]
        rng.shuffle(foreign)
        url = fresh_database(admin_url, eval_set.name)
        migrate(url)
        engine = create_engine(url, pool_size=2)
        try:
            answering = build_answering(settings, session_factory(engine), embedder=usem,
                                        second=e5, persona=eval_set.persona)
            await answering.knowledge.import_files(eval_set.files(), editor="fit")
            await answering.intent_examples.seed()
            questions = [(c, False) for c in eval_set.cases]
            questions += [(c, True) for c in foreign[:FOREIGN_PER_SET]]
            for case, is_foreign in questions:
                routed = await answering.intent_router.route(case.text)
                vector = routed.vector or (await usem.embed([case.text]))[0]
                retriever = answering.retriever
                canonical = await retriever.query_vector(case.text, vector)
                pool, unknown, words = await retriever.pool(case.text, canonical, unknown=True)
                samples.append(Sample(
                    eval_set.name, case, is_foreign, dict(routed.scores), tuple(pool),
                    len(unknown) / words if words else 0.0,
                    detect_language(case.text) == "en"))
        finally:
            await engine.dispose()
    return samples


def _names_a_product(case: SetCase, owner: EvalSet) -> bool:
    """A question about another business's own products ("¿cuánto cuesta el X?",
    "¿cómo devuelvo el X?"): a base without X must not answer it. Generic questions
    ("¿puedo pagar en OXXO?") may well be answered by any business, so they are left
    out of the negatives."""
    skus = {p.sku for p in owner.products}
    return bool(set(case.sources) & skus) or bool(
        {"howto_product", "catalog", "price", "stock", "comparison"} & set(case.kinds))


def _groups(samples: Sequence[Sample], ranker: Ranker) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for s in samples:
        if not s.answerable:
            continue
        ranked = ranker.rank(s.pool, context=s.context)
        y = np.array([1.0 if r.source_id in s.case.sources else 0.0 for r in ranked])
        if not ranked or y.sum() == 0:
            continue
        x = np.array([r.features.values for r in ranked])
        out.append((s.set_name, x, y / y.sum()))
    return out


def fit_ranker(groups: Sequence[tuple[str, np.ndarray, np.ndarray]], *, epochs: int = 400,
               rate: float = 0.05, l2: float = 1e-3) -> np.ndarray:
    weights = np.array(Ranker().weights, dtype=float)
    for _ in range(epochs):
        grad = np.zeros_like(weights)
        for _, x, y in groups:
            s = x @ weights
            p = np.exp(s - s.max())
            p /= p.sum()
            grad += x.T @ (p - y)
        weights -= rate * (grad / max(1, len(groups)) + l2 * weights)
    return weights


def _confidence_rows(samples: Sequence[Sample], ranker: Ranker
                     ) -> list[tuple[str, np.ndarray, float]]:
    rows: list[tuple[str, np.ndarray, float]] = []
    for s in samples:
        if s.case.expect not in ("answer", "escalate") or (
                s.case.expect == "escalate" and s.case.reason != "no_answer"):
            continue
        ranked = ranker.rank(s.pool, context=s.context)
        if not ranked:
            continue
        lead = ranked[0].score - ranked[1].score if len(ranked) > 1 else 2.0
        # the question is one the base answers (escalating it is the wrong decision even
        # when the best source is not the labelled one)
        right = float(s.answerable)
        rows.append((s.set_name, np.array(confidence_inputs(ranked[0], lead, s.context)),
                     right))
    return rows


def fit_confidence(rows: Sequence[tuple[str, np.ndarray, float]], *, epochs: int = 2000,
                   rate: float = 0.1, l2: float = 1e-3) -> tuple[np.ndarray, float]:
    raw = np.array([r[1] for r in rows])
    y = np.array([r[2] for r in rows])
    mean, spread = raw.mean(0), raw.std(0) + 1e-9
    x = (raw - mean) / spread  # standardised while fitting, folded back below
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        w -= rate * (x.T @ (p - y) / len(y) + l2 * w)
        b -= rate * float((p - y).mean())
    return w / spread, b - float((w * mean / spread).sum())


def _catalog_rows(samples: Sequence[Sample], ranker: Ranker
                  ) -> list[tuple[str, np.ndarray, float]]:
    rows = []
    for s in samples:
        if not s.answerable:
            continue
        ranked = ranker.rank(s.pool, context=s.context)
        values = catalog_inputs(ranked, s.hint, s.context.form)
        if values is None:
            continue
        wanted = {c.source_kind for c in s.pool if c.source_id in s.case.sources}
        if len(wanted) != 1:
            continue
        rows.append((s.set_name, np.array(values), float(wanted == {"product"})))
    return rows


def _with(ranker: Ranker, weights: np.ndarray | None = None,
          catalog: tuple[np.ndarray, float] | None = None,
          confidence: tuple[np.ndarray, float] | None = None) -> Ranker:
    return Ranker(
        weights=tuple(float(v) for v in weights) if weights is not None else ranker.weights,
        bias=ranker.bias,
        confidence_weights=tuple(float(v) for v in confidence[0]) if confidence
        else ranker.confidence_weights,
        confidence_bias=float(confidence[1]) if confidence else ranker.confidence_bias,
        signal_weights=ranker.signal_weights,
        catalog_weights=tuple(float(v) for v in catalog[0]) if catalog
        else ranker.catalog_weights,
        catalog_bias=float(catalog[1]) if catalog else ranker.catalog_bias,
    )


def fit_all(samples: Sequence[Sample], base: Ranker) -> Ranker:
    """Ranker weights, then the catalog decision, then the confidence, each on the last."""
    ranker = _with(base, fit_ranker(_groups(samples, base)))
    ranker = _with(ranker, catalog=fit_confidence(_catalog_rows(samples, ranker)))
    return _with(ranker, confidence=fit_confidence(_confidence_rows(samples, ranker)))


def report(samples: Sequence[Sample]) -> str:
    """Fitted weights and the leave-one-set-out figures: with both models' cosines in
    the pools, then with the second model's left out (``first_only``)."""
    first_only = [
        replace(s, pool=tuple(replace(c, e5=None) for c in s.pool)) for s in samples]
    return "\n".join(["with both models:", _report(samples),
                      "with the first model alone (first_only):", _report(first_only)])


def _report(samples: Sequence[Sample]) -> str:
    base = Ranker()
    names = sorted({s.set_name for s in samples})
    lines = []
    total_right = total = 0
    for held in names:
        ranker = fit_all([s for s in samples if s.set_name != held], base)
        test = [s for s in samples if s.set_name == held and s.answerable]
        right = sum(1 for s in test if (r := ranker.rank(s.pool, context=s.context))
                    and r[0].source_id in s.case.sources)
        rows = _confidence_rows([s for s in samples if s.set_name == held], ranker)
        conf_w, conf_b = np.array(ranker.confidence_weights), ranker.confidence_bias
        decided = sum(
            (1 / (1 + math.exp(-(float(x @ conf_w) + conf_b))) >= 0.5) == bool(y)
            for _, x, y in rows)
        lines.append(f"left out {held}: right source first {right}/{len(test)}, "
                     f"answer-or-not right {decided}/{len(rows)}")
        total_right += right
        total += len(test)
    lines.append(f"left-one-set-out total: {total_right}/{total} "
                 f"({total_right / max(1, total):.1%})")
    ranker = fit_all(samples, base)
    rows = _confidence_rows(samples, ranker)
    conf_w, conf_b = np.array(ranker.confidence_weights), ranker.confidence_bias
    probabilities = [1 / (1 + math.exp(-(float(x @ conf_w) + conf_b))) for _, x, _ in rows]
    sweep = []
    for threshold in (0.2, 0.3, 0.4, 0.5, 0.6):
        right = sum((p >= threshold) == bool(y) for p, (_, _, y) in zip(
            probabilities, rows, strict=True))
        sweep.append(f"{threshold:.1f}: {right}/{len(rows)}")
    lines.append("answer-or-not right by min_confidence (all sets): " + ", ".join(sweep))
    lines.append(f"weights={_tuple(ranker.weights)}")
    lines.append(f"catalog_weights={_tuple(ranker.catalog_weights)}, "
                 f"catalog_bias={ranker.catalog_bias:.3f}")
    lines.append(f"confidence_weights={_tuple(ranker.confidence_weights)}, "
                 f"confidence_bias={ranker.confidence_bias:.3f}")
    return "\n".join(lines)


async def run_fit(settings: Settings, folders: Sequence[Path], cache: Path | None) -> str:
    from bot.infra.embedded import EmbeddedPostgres

    if cache is not None and cache.exists():
        samples = pickle.loads(cache.read_bytes())  # noqa: S301 (our own file)
        return report(samples)
    root = Path(f"/tmp/atiende-fit-{uuid.uuid4().hex[:8]}")
    server = EmbeddedPostgres(root / "pgdata", delete_on_stop=True)
    url = server.start()
    admin = f"postgresql://postgres@/postgres?host={url.split('host=', 1)[1]}"
    try:
        samples = await collect(settings, admin, [load_set(f) for f in folders])
    finally:
        server.stop()
    if cache is not None:
        cache.write_bytes(pickle.dumps(samples))
    return report(samples)


def _tuple(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"


# -- requests for a person (knowledge.requests) -------------------------------------------

# The L2 penalty of the request model: leave-one-set-out on eight sets, 0.3 / 1 / 3 / 10 / 30
# found 45 / 42 / 41 / 39 / 39 of 64 requests at 0.8 and took 7 / 6 / 3 / 1 / 0 other
# questions for requests (BENCHMARKS.md).
REQUEST_L2 = 30.0


def request_reason(case: SetCase) -> str | None:
    """For a question labelled as one only a person can take (buying, one's own records,
    or a complaint the rules did not catch: "el chofer dejó a mi hijo en la esquina"),
    which of them; ``None`` for any other question."""
    from knowledge.requests import REASONS

    if case.expect == "escalate" and case.reason in REASONS:
        return case.reason
    return None


def is_request(case: SetCase) -> bool:
    return request_reason(case) is not None


def request_cases(sets: Sequence[EvalSet]) -> list[tuple[str, SetCase]]:
    """Every question the rules leave to the classifier, with its set's name."""
    from bot.answering.rules import route_rules

    return [(s.name, c) for s in sets for c in s.cases if route_rules(c.text) is None]


def training_digest(rows: Sequence[tuple[str, SetCase]], *, l2: float = REQUEST_L2) -> str:
    """What the request model is fitted on, as one hash: each question as the model reads
    it, its label and the penalty. Stored in the model; a test compares it with the sets'
    (an edited set or rule changes it: run `make request-model`)."""
    from knowledge.requests import REASONS, request_text

    digest = hashlib.sha256(f"l2={l2};reasons={','.join(REASONS)}".encode())
    for name, case in rows:
        digest.update(f"\n{name}\t{request_text(case.text)}\t{request_reason(case)}".encode())
    return digest.hexdigest()


async def request_samples(sets: Sequence[EvalSet]
                          ) -> list[tuple[str, SetCase, list[float], list[float]]]:
    """Every question the rules leave to the classifier, with both models' vectors."""
    first, second = UsemEmbedder(), E5Embedder()
    from knowledge.requests import request_text

    rows = request_cases(sets)
    texts = [request_text(c.text) for _, c in rows]
    one = await first.embed(texts)
    two = await second.embed_queries(texts)
    return [(name, case, list(a), list(b))
            for (name, case), a, b in zip(rows, one, two, strict=True)]


def request_report(samples: Sequence[tuple[str, SetCase, list[float], list[float]]],
                   *, l2: float = REQUEST_L2) -> str:
    """Leave-one-set-out: fit on the other sets, score the one left out (requests found,
    and other questions taken for requests), at the thresholds the responder uses."""
    from knowledge.requests import fit_request_model

    names = sorted({s[0] for s in samples})
    scored: list[tuple[str, bool, float, float]] = []
    kinds: list[tuple[str, str | None]] = []  # (labelled reason, the kind model's) per request
    for left_out in names:
        train = [(a, b, request_reason(c)) for n, c, a, b in samples if n != left_out]
        model = fit_request_model(UsemEmbedder().name, E5Embedder().name, train, l2=l2)
        scored += [(n, is_request(c), model.probability(a, b), model.probability(a))
                   for n, c, a, b in samples if n == left_out]
        kinds += [(reason, model.kind(a, b)) for n, c, a, b in samples
                  if n == left_out and (reason := request_reason(c)) is not None]
    lines = [f"requests for a person, left-one-set-out ({len(samples)} questions, "
             f"{sum(s[1] for s in scored)} requests):"]
    lines.append(f"  which request (the handoff reason): {sum(a == b for a, b in kinds)} of "
                 f"{len(kinds)} right; " + ", ".join(
                     f"{label} taken for {guess}: {n}" for (label, guess), n in sorted(
                         Counter(k for k in kinds if k[0] != k[1]).items(), key=str)))
    for threshold in (0.5, 0.7, 0.8, 0.9):
        found = sum(1 for s in scored if s[1] and s[2] >= threshold)
        wrong = sum(1 for s in scored if not s[1] and s[2] >= threshold)
        lines.append(f"  both models >= {threshold}: {found} requests found, "
                     f"{wrong} other questions taken for requests")
    for threshold in (0.2, 0.3):
        kept = sum(1 for s in scored if s[1] and s[3] >= threshold)
        sent = sum(1 for s in scored if not s[1] and s[3] >= threshold)
        lines.append(f"  first model alone >= {threshold} (the cascade's gate): {kept} requests "
                     f"kept for both models, {sent} other questions sent on")
    for name in names:
        mine = [s for s in scored if s[0] == name]
        lines.append(f"  {name}: {sum(1 for s in mine if s[1] and s[2] >= 0.8)}/"
                     f"{sum(s[1] for s in mine)} requests at 0.8, "
                     f"{sum(1 for s in mine if not s[1] and s[2] >= 0.8)} others")
    return "\n".join(lines)


async def run_fit_requests(folders: Sequence[Path], target: Path) -> str:
    """Fit the request model on every set given, write it to ``target``, and report."""
    from knowledge.requests import fit_request_model

    samples = await request_samples([load_set(f) for f in folders])
    model = fit_request_model(UsemEmbedder().name, E5Embedder().name,
                              [(a, b, request_reason(c)) for _, c, a, b in samples],
                              l2=REQUEST_L2)
    model.save(target, digest=training_digest([(n, c) for n, c, _, _ in samples]))
    return request_report(samples) + f"\nwritten: {target}"
