"""Does a message ask for what only a person can do: buy now, see one's own records, or
take a complaint? And which of the three?

Sentence embeddings are mostly about a message's topic, so the nearest intent examples
of "ya me decidí, cóbrenme los brackets" are questions about brackets. A logistic model
over both embedding models' vectors of the message reads the form of the request
instead. It is fitted with plain numpy on the labelled questions of every evaluation
set (``atiende eval --fit-requests``; leave-one-set-out figures in BENCHMARKS.md), so it
is about no business in particular. It reads the message with its personal data masked
(a phone number left for a call back is not a request), and ships as
``knowledge/data/requests.npz``: one model over both vectors, and one over the first
model's vector alone for the cascade's cheap first look. Which request a message is
(``REASONS``: the handoff reason the customer's reply and the agent's queue show) is a
second, one-against-the-rest model per reason over both vectors, fitted on the requests
alone: the intent examples' nearest label, which chose it before, is about the topic
("me regresaron el carro con un rayón" sat nearest to buying a car).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from knowledge.embeddings import Vector
from knowledge.masking import mask

SHIPPED = "data/requests.npz"
# What a request can be, in the evaluation sets' labels (README of knowledge/evalsets).
REASONS = ("sales", "account", "complaint")


def request_text(text: str) -> str:
    """What the model reads: the message with phone numbers, e-mails, card and record
    numbers and names replaced by their kind ("[teléfono]"), in fitting and in use."""
    return mask(text).text


@dataclass(frozen=True)
class Logistic:
    """Standardised inputs, weights and bias: ``sigmoid(w · (x - mean) / scale + b)``."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def probability(self, x: np.ndarray) -> float:
        if x.shape != self.mean.shape:
            raise ValueError(f"expected {self.mean.shape[0]} inputs, got {x.shape[0]}")
        z = float(((x - self.mean) / self.scale) @ self.weights + self.bias)
        return 1.0 / (1.0 + float(np.exp(-max(-30.0, min(30.0, z)))))


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1.0, iterations: int = 1500,
                 rate: float = 0.5) -> Logistic:
    """Gradient descent on the class-balanced log loss with an L2 penalty (the few
    requests weigh as much as the many questions)."""
    if x.ndim != 2 or len(x) != len(y) or not 0 < y.sum() < len(y):
        raise ValueError("need a matrix of samples and both classes among the labels")
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    positive = float(y.mean())
    weight = np.where(y == 1, 0.5 / positive, 0.5 / (1.0 - positive))
    w = np.zeros(z.shape[1])
    b = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        g = (p - y) * weight
        w -= rate * (z.T @ g / len(y) + l2 * w / len(y))
        b -= rate * float(g.mean())
    return Logistic(mean, scale, w, b)


@dataclass(frozen=True)
class RequestModel:
    """The probability that a message is a request for a person (buying, own records, a
    complaint), and which of them it is."""

    first_model: str
    second_model: str
    both: Logistic  # over [first vector, second vector]
    first_only: Logistic  # over the first vector alone
    # one against the rest per reason, over both vectors, fitted on requests only
    kinds: dict[str, Logistic] = field(default_factory=dict)
    # what it was fitted on (a hash the fitting command stores; "" when unknown)
    digest: str = ""

    def probability(self, first: Vector, second: Vector | None = None) -> float:
        one = np.asarray(first, dtype=np.float64)
        if second is None:
            return self.first_only.probability(one)
        return self.both.probability(np.concatenate([one, np.asarray(second, np.float64)]))

    def kind(self, first: Vector, second: Vector | None) -> str | None:
        """Which request the message is, if it is one (a reason of ``REASONS``); ``None``
        without the second model's vector or a fitted kind model."""
        if second is None or not self.kinds:
            return None
        x = np.concatenate([np.asarray(first, np.float64), np.asarray(second, np.float64)])
        return max(self.kinds, key=lambda reason: self.kinds[reason].probability(x))

    def save(self, target: Path, *, digest: str | None = None) -> None:
        """Write the model (``digest``: what it was fitted on, else its own)."""
        arrays: dict[str, np.ndarray] = {
            "first_model": np.array(self.first_model), "second_model": np.array(self.second_model),
            "digest": np.array(self.digest if digest is None else digest)}
        parts = [("both", self.both), ("first", self.first_only),
                 *((f"kind_{reason}", model) for reason, model in self.kinds.items())]
        for name, part in parts:
            arrays[f"{name}_mean"] = part.mean
            arrays[f"{name}_scale"] = part.scale
            arrays[f"{name}_weights"] = part.weights
            arrays[f"{name}_bias"] = np.array(part.bias)
        with target.open("wb") as handle:
            np.savez_compressed(handle, allow_pickle=False, **arrays)

    @classmethod
    def load(cls, source: Path) -> RequestModel:
        with source.open("rb") as handle, np.load(handle) as data:
            parts = {
                name: Logistic(data[f"{name}_mean"], data[f"{name}_scale"],
                               data[f"{name}_weights"], float(data[f"{name}_bias"]))
                for name in ("both", "first", *(f"kind_{r}" for r in REASONS))
                if f"{name}_mean" in data
            }
            kinds = {r: parts[f"kind_{r}"] for r in REASONS if f"kind_{r}" in parts}
            digest = str(data["digest"]) if "digest" in data else ""
            return cls(str(data["first_model"]), str(data["second_model"]), parts["both"],
                       parts["first"], kinds, digest)


def fit_request_model(first_model: str, second_model: str,
                      samples: Sequence[tuple[Vector, Vector, str | None]], *, l2: float = 1.0
                      ) -> RequestModel:
    """The models from (first vector, second vector, reason) samples; the reason is one
    of ``REASONS`` for a request, ``None`` for anything else."""
    unknown = {s[2] for s in samples} - {None, *REASONS}
    if unknown:
        raise ValueError(f"unknown request reasons: {sorted(map(str, unknown))}")
    first = np.array([s[0] for s in samples], dtype=np.float64)
    second = np.array([s[1] for s in samples], dtype=np.float64)
    both = np.hstack([first, second])
    y = np.array([0.0 if s[2] is None else 1.0 for s in samples])
    requests = y == 1.0
    reasons = [s[2] for s in samples if s[2] is not None]
    kinds = {
        reason: fit_logistic(both[requests],
                             np.array([1.0 if r == reason else 0.0 for r in reasons]), l2=l2)
        for reason in REASONS if 0 < reasons.count(reason) < len(reasons)
    }
    return RequestModel(first_model, second_model, fit_logistic(both, y, l2=l2),
                        fit_logistic(first, y, l2=l2), kinds)


def shipped_request_model(first_model: str, second_model: str | None) -> RequestModel | None:
    """The shipped model when it was fitted on these embedding models (else ``None``:
    another model's vectors mean nothing to its weights)."""
    path = resources.files("knowledge").joinpath(SHIPPED)
    if second_model is None or not path.is_file():
        return None
    with resources.as_file(path) as local:
        model = RequestModel.load(Path(local))
    if (model.first_model, model.second_model) != (first_model, second_model):
        return None
    return model
