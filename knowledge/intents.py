"""Labelled intent examples (admins can add more) and the nearest-neighbour classifier.

The examples live in ``kb_intent_examples`` with their embeddings; the
classifier loads them once per knowledge-base revision and scores a message by
its cosine similarity to the closest examples of each label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.embeddings import Embedder, Vector
from knowledge.errors import DocumentError, EntryNotFound
from knowledge.models import IntentExample, State

MAX_EXAMPLE_CHARS = 500


@dataclass(frozen=True, slots=True)
class ExampleView:
    id: int
    intent: str
    text: str
    created_by: str


@dataclass(frozen=True, slots=True)
class Classified:
    label: str
    confidence: float  # similarity-based, 0..1
    margin: float  # best label's score minus the runner-up's
    scores: dict[str, float] | None = None  # every label's score


# The second model's vectors of the shipped examples, computed once at release time
# (``make intent-vectors``): ~175 e5 questions were seconds of CPU at every fresh start.
SHIPPED_SECOND = "data/intents.second.npz"


def shipped_second_vectors(model: str) -> dict[str, Vector]:
    """text -> vector of the shipped examples by ``model`` (empty for another model)."""
    path = resources.files("knowledge").joinpath(SHIPPED_SECOND)
    if not path.is_file():
        return {}
    with path.open("rb") as handle, np.load(handle) as data:
        if str(data["model"]) != model:
            return {}
        return {str(t): [float(x) for x in v]
                for t, v in zip(data["texts"], data["vectors"], strict=True)}


async def write_shipped_second_vectors(embedder: Embedder, target: Path) -> int:
    """Embed every shipped example with ``embedder`` (as questions) into ``target``."""
    texts = sorted({t for values in seed_examples().values() for t in values})
    embed = getattr(embedder, "embed_queries", None) or embedder.embed
    vectors = np.array([list(v) for v in await embed(texts)], dtype=np.float32)
    with target.open("wb") as handle:
        np.savez_compressed(handle, model=np.array(embedder.name), texts=np.array(texts),
                            vectors=vectors)
    return len(texts)


def seed_examples() -> dict[str, list[str]]:
    """The labelled examples that ship with Atiende (``knowledge/data/intents.yaml``)."""
    raw = resources.files("knowledge").joinpath("data/intents.yaml").read_text("utf-8")
    data = yaml.safe_load(raw)
    return {str(k): [str(x) for x in v] for k, v in data.items()}


class IntentExamples:
    """Stored examples: seed, add, remove, list, embed."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], embedder: Embedder) -> None:
        self._sessions = sessions
        self._embedder = embedder

    async def seed(self) -> int:
        """The shipped examples: insert the missing ones and remove the ones a newer release
        no longer ships (admins' own examples stay); returns how many were added."""
        rows = [(label, text) for label, texts in seed_examples().items() for text in texts]
        async with self._sessions.begin() as session:
            shipped = {f"{label}\x00{text}" for label, text in rows}
            old = (await session.execute(
                select(IntentExample.id, IntentExample.intent, IntentExample.text)
                .where(IntentExample.created_by == "seed"))).all()
            gone = [r.id for r in old if f"{r.intent}\x00{r.text}" not in shipped]
            if gone:
                await session.execute(delete(IntentExample).where(IntentExample.id.in_(gone)))
                await _bump(session)
        return await self._insert(rows, created_by="seed")

    async def add(self, intent: str, text: str, *, created_by: str) -> ExampleView:
        text = " ".join(text.split())
        if not text or len(text) > MAX_EXAMPLE_CHARS:
            raise DocumentError("example", f"text must be 1-{MAX_EXAMPLE_CHARS} characters")
        await self._insert([(intent, text)], created_by=created_by)
        async with self._sessions() as session:
            row = await session.scalar(
                select(IntentExample).where(IntentExample.intent == intent,
                                            IntentExample.text == text)
            )
        assert row is not None
        return ExampleView(row.id, row.intent, row.text, row.created_by)

    async def remove(self, example_id: int) -> None:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(IntentExample).where(IntentExample.id == example_id)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise EntryNotFound(f"example {example_id} not found")
            await _bump(session)

    async def texts(self) -> list[tuple[str, str]]:
        """(intent, text) of every example, in a stable order."""
        async with self._sessions() as session:
            rows = (await session.execute(
                select(IntentExample.intent, IntentExample.text).order_by(IntentExample.id)
            )).all()
        return [(r.intent, r.text) for r in rows]

    async def all(self, *, intent: str | None = None, query: str = "") -> list[ExampleView]:
        """Every example (of ``intent``, containing ``query`` with accents ignored)."""
        stmt = select(IntentExample).order_by(IntentExample.intent, IntentExample.id)
        if intent:
            stmt = stmt.where(IntentExample.intent == intent)
        if query.strip():
            like = "%" + query.strip().replace("\\", "").replace("%", "").replace("_", "") + "%"
            stmt = stmt.where(func.kb_fold(IntentExample.text).like(func.kb_fold(like)))
        async with self._sessions() as session:
            rows = (await session.scalars(stmt)).all()
        return [ExampleView(r.id, r.intent, r.text, r.created_by) for r in rows]

    async def vectors(self) -> list[tuple[str, Vector]]:
        """(label, embedding) of every example, re-embedding stale ones first."""
        name = self._embedder.name
        async with self._sessions() as session:
            stale = (
                await session.execute(
                    select(IntentExample.id, IntentExample.text).where(
                        or_(IntentExample.model != name, IntentExample.embedding.is_(None))
                    )
                )
            ).all()
        if stale:
            vectors = await self._embedder.embed([r.text for r in stale])
            async with self._sessions.begin() as session:
                for row, vector in zip(stale, vectors, strict=True):
                    await session.execute(
                        update(IntentExample).where(IntentExample.id == row.id)
                        .values(embedding=vector, model=name)
                    )
        async with self._sessions() as session:
            rows = (
                await session.execute(select(IntentExample.intent, IntentExample.embedding))
            ).all()
        return [(r.intent, [float(x) for x in r.embedding]) for r in rows]

    async def second_vectors(self, second: Embedder) -> list[tuple[str, Vector]]:
        """(label, the second model's embedding as a question) of every example; missing
        or stale ones are embedded once and stored (not again at every start)."""
        name = second.name
        async with self._sessions() as session:
            stale = (await session.execute(
                select(IntentExample.id, IntentExample.text).where(or_(
                    IntentExample.second_model != name,
                    IntentExample.second_embedding.is_(None)))
            )).all()
        if stale:
            shipped = shipped_second_vectors(name)
            missing = [r.text for r in stale if r.text not in shipped]
            embed = getattr(second, "embed_queries", None) or second.embed
            fresh = dict(zip(missing, [list(v) for v in await embed(missing)], strict=True)
                         ) if missing else {}
            vectors = [shipped.get(r.text) or fresh[r.text] for r in stale]
            async with self._sessions.begin() as session:
                for row, vector in zip(stale, vectors, strict=True):
                    await session.execute(
                        update(IntentExample).where(IntentExample.id == row.id)
                        .values(second_embedding=vector, second_model=name)
                    )
        async with self._sessions() as session:
            rows = (await session.execute(
                select(IntentExample.intent, IntentExample.second_embedding)
                .where(IntentExample.second_model == name)
                .order_by(IntentExample.id)
            )).all()
        return [(r.intent, [float(x) for x in r.second_embedding]) for r in rows]

    async def _insert(self, rows: Sequence[tuple[str, str]], *, created_by: str) -> int:
        if not rows:
            return 0
        vectors = await self._embedder.embed([text for _, text in rows])
        async with self._sessions.begin() as session:
            stmt = (
                insert(IntentExample)
                .values([
                    {"intent": label, "text": text, "embedding": vector,
                     "model": self._embedder.name, "created_by": created_by}
                    for (label, text), vector in zip(rows, vectors, strict=True)
                ])
                .on_conflict_do_nothing(index_elements=["intent", "text"])
                .returning(IntentExample.id)
            )
            added = len((await session.execute(stmt)).all())
            if added:
                await _bump(session)
        return added


class NearestExamples:
    """k-nearest-neighbour classification over labelled example vectors."""

    def __init__(self, examples: Sequence[tuple[str, Vector]], *, k: int = 3) -> None:
        self._labels = [label for label, _ in examples]
        self._matrix = np.array([v for _, v in examples], dtype=np.float32).reshape(
            len(self._labels), -1
        )
        self._k = k

    def __len__(self) -> int:
        return len(self._labels)

    def classify(self, vector: Vector) -> Classified | None:
        if not self._labels:
            return None
        sims = self._matrix @ np.asarray(vector, dtype=np.float32)
        per_label: dict[str, list[float]] = {}
        for label, sim in zip(self._labels, sims.tolist(), strict=True):
            per_label.setdefault(label, []).append(float(sim))
        scores = {
            label: _mean(sorted(values, reverse=True)[: self._k])
            for label, values in per_label.items()
        }
        best = sorted(scores.items(), key=lambda kv: -kv[1])
        top_label, top = best[0]
        runner = best[1][1] if len(best) > 1 else 0.0
        return Classified(top_label, max(0.0, min(1.0, top)), top - runner, scores)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


async def _bump(session: AsyncSession) -> None:
    await session.execute(
        update(State).where(State.id == 1).values(revision=State.revision + 1,
                                                  updated_at=func.now())
    )
