"""``atiende eval``: score the responder on a labelled question set.

Each case says the intent expected, which sources may come first (article ids
or skus; empty when no source should be cited) and whether the bot must hand
over. Figures: top-source hit rate, intent accuracy, escalation precision and
recall, and unsupported answers (an answer to something that should have been
handed over, or a number in a reply that the cited sources do not contain).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from bot.answering.knowledge import KnowledgeResponder
from bot.answering.responder import Decision, ResponseRequest
from bot.db import create_engine, session_factory
from bot.settings import Settings
from knowledge.demo import load_demo_if_empty
from knowledge.store import KnowledgeStore

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class Case:
    text: str
    intents: tuple[str, ...]
    sources: tuple[str, ...]
    escalate: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    decision: Decision
    invented: tuple[str, ...]  # numbers in the reply that no cited source holds

    @property
    def source_hit(self) -> bool:
        return bool(self.decision.sources) and self.decision.sources[0] in self.case.sources

    @property
    def intent_ok(self) -> bool:
        return self.decision.intent in self.case.intents

    @property
    def unsupported(self) -> bool:
        answered_anyway = self.case.escalate and not self.decision.escalate and bool(
            self.decision.sources
        )
        return answered_anyway or bool(self.invented)


@dataclass
class EvalReport:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def hit_rate(self) -> float:
        with_sources = [o for o in self.outcomes if o.case.sources]
        return _ratio(sum(o.source_hit for o in with_sources), len(with_sources))

    @property
    def intent_accuracy(self) -> float:
        return _ratio(sum(o.intent_ok for o in self.outcomes), len(self.outcomes))

    @property
    def escalation_precision(self) -> float:
        flagged = [o for o in self.outcomes if o.decision.escalate]
        return _ratio(sum(o.case.escalate for o in flagged), len(flagged))

    @property
    def escalation_recall(self) -> float:
        wanted = [o for o in self.outcomes if o.case.escalate]
        return _ratio(sum(o.decision.escalate for o in wanted), len(wanted))

    @property
    def escalation_accuracy(self) -> float:
        right = sum(o.decision.escalate == o.case.escalate for o in self.outcomes)
        return _ratio(right, len(self.outcomes))

    @property
    def unsupported_answers(self) -> int:
        return sum(o.unsupported for o in self.outcomes)

    def lines(self) -> list[str]:
        out = []
        for o in self.outcomes:
            marks = "".join([
                "S" if not o.case.sources else ("✓" if o.source_hit else "✗"),
                "✓" if o.intent_ok else "✗",
                "✓" if o.decision.escalate == o.case.escalate else "✗",
                "!" if o.unsupported else " ",
            ])
            out.append(
                f"{marks} {o.case.text[:60]!r:64} intent={o.decision.intent:<14} "
                f"esc={o.decision.escalate!s:<5} sources={list(o.decision.sources)[:3]} "
                f"expected={list(o.case.sources)}"
            )
        return out

    def summary(self) -> str:
        sourced = len([o for o in self.outcomes if o.case.sources])
        return (
            f"questions: {len(self.outcomes)} ({sourced} with an expected source)\n"
            f"top-source hit rate: {self.hit_rate:.1%}\n"
            f"intent accuracy: {self.intent_accuracy:.1%}\n"
            f"escalation: correct {self.escalation_accuracy:.1%}, "
            f"precision {self.escalation_precision:.1%}, recall {self.escalation_recall:.1%}\n"
            f"unsupported answers: {self.unsupported_answers}"
        )


def load_questions(path: Path | None = None) -> list[Case]:
    """The labelled question set (YAML list of {q, intent, sources, escalate})."""
    if path is None:
        raw = resources.files("knowledge").joinpath("demo/questions.yaml").read_text("utf-8")
    else:
        raw = path.read_text("utf-8")
    cases = []
    for item in yaml.safe_load(raw):
        intent = item["intent"]
        cases.append(Case(
            text=str(item["q"]),
            intents=tuple(intent) if isinstance(intent, list) else (str(intent),),
            sources=tuple(str(s) for s in item.get("sources") or ()),
            escalate=bool(item.get("escalate", False)),
        ))
    return cases


async def evaluate(responder: KnowledgeResponder, store: KnowledgeStore,
                   cases: list[Case]) -> EvalReport:
    """Run every case through ``responder`` (no conversation history)."""
    report = EvalReport()
    facts = await _source_numbers(store)
    for case in cases:
        decision = await responder.respond(
            ResponseRequest(conversation_id=uuid.uuid4(), message_id=uuid.uuid4(),
                            text=case.text)
        )
        allowed: set[str] = set()
        for source in decision.sources:
            allowed |= facts.get(source, set())
        numbers = {_canon(n) for reply in decision.replies for n in _NUMBER.findall(reply)}
        invented = tuple(sorted(n for n in numbers if n not in allowed)) \
            if decision.sources else ()
        report.outcomes.append(Outcome(case, decision, invented))
    return report


def unhurried(settings: Settings) -> Settings:
    """The settings with the load shortcuts off (the second model skipped behind a
    backlog or a slow first look): an evaluation scores the answers, not the machine."""
    knowledge = settings.knowledge.model_copy(
        update={"second_model_max_wait": 0.0, "second_model_queue": 0})
    return settings.model_copy(update={"knowledge": knowledge})


async def run_eval(settings: Settings, url: str, cases: list[Case]) -> EvalReport:
    """Evaluate against the knowledge base at ``url`` (loads the demo when it is empty),
    with the responder wired as the running bot wires it (no LLM)."""
    from bot.wiring.answering import build_answering

    engine = create_engine(url, pool_size=2)
    try:
        answering = build_answering(unhurried(settings), session_factory(engine))
        await load_demo_if_empty(answering.knowledge)
        await answering.knowledge.maintain()
        await answering.intent_examples.seed()
        responder = answering.responder
        assert isinstance(responder, KnowledgeResponder)
        return await evaluate(responder, answering.knowledge, cases)
    finally:
        await engine.dispose()


async def _source_numbers(store: KnowledgeStore) -> dict[str, set[str]]:
    facts: dict[str, set[str]] = {}
    for article in await store.list_articles(limit=10_000):
        facts[article.id] = {_canon(n) for n in _NUMBER.findall(article.body + article.title)}
    for product in await store.list_products(limit=100_000):
        text = f"{product.name} {product.description} {product.price:.2f} {product.stock or ''}"
        facts[product.sku] = {_canon(n) for n in _NUMBER.findall(text)}
    return facts


def _canon(number: str) -> str:
    plain = number.replace(",", "").rstrip(".")
    if "." in plain:
        plain = plain.rstrip("0").rstrip(".")
    return plain


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 1.0
