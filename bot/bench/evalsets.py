"""``atiende eval --set``: the bot on other businesses' knowledge bases, beside a baseline.

Each set (``knowledge/evalsets/<slug>/``, format in its README) is imported into its own
fresh database on a throwaway PostgreSQL; every question goes through the same
responder the running bot uses (no LLM: the figures are the knowledge base's own), and
through the plain-fusion baseline (``bot.bench.baseline``) on the same questions.

Figures per set:
- right source first: of the questions the base answers, the first source is one of
  the acceptable ones (bot and baseline);
- fact in reply: of the questions with a deciding fact, the reply holds it (compared
  folded, numbers without thousands separators);
- escalation right: handed over exactly when the label says so (all questions);
- handoff reason right: of the questions handed over that should be, the reason is the
  labelled one (it picks the customer's reply and the agent's queue);
- invented facts: a number in a reply that neither the cited sources nor the business
  information hold; leaks: a reply that repeats the bot's rules or reference;
- p95 decision time of the responder.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from bot.answering.generation import PersonaText
from bot.answering.grounding import leaked, system_rules
from bot.answering.responder import Decision, Persona, Responder, ResponseRequest
from bot.bench.baseline import PlainFusion, paragraph_chunks
from bot.bench.evaluation import unhurried
from bot.db import create_engine, migrate, session_factory
from bot.settings import Settings
from bot.wiring.answering import build_answering
from knowledge.documents import ArticleDoc, ProductDoc, parse_csv, parse_markdown
from knowledge.e5 import E5Embedder
from knowledge.store import KnowledgeStore
from knowledge.text import fold
from knowledge.usem import UsemEmbedder

EXPECTS = ("answer", "escalate", "clarify", "smalltalk", "decline")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


@dataclass(frozen=True, slots=True)
class SetCase:
    text: str
    expect: str
    sources: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()
    reason: str | None = None
    kinds: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EvalSet:
    name: str
    folder: Path
    persona: Persona
    articles: tuple[ArticleDoc, ...]
    products: tuple[ProductDoc, ...]
    cases: tuple[SetCase, ...]

    def files(self) -> list[tuple[str, bytes]]:
        found = sorted((self.folder / "articles").glob("*.md")) + [self.folder / "catalog.csv"]
        return [(str(p), p.read_bytes()) for p in found if p.exists()]


def _tuple(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, list | tuple):
        return tuple(str(x) for x in raw)
    return (str(raw),)


def load_set(folder: Path) -> EvalSet:
    """A set's files, parsed with the importer's own parsers (so a bad set fails here)."""
    business = yaml.safe_load((folder / "business.yaml").read_text("utf-8")) or {}
    persona = Persona(str(business.get("bot_name", "Asistente")),
                      str(business.get("name", folder.name)),
                      str(business.get("language", "es")))
    articles = tuple(parse_markdown(str(p), p.read_bytes())
                     for p in sorted((folder / "articles").glob("*.md")))
    catalog = folder / "catalog.csv"
    products = tuple(parse_csv(str(catalog), catalog.read_bytes())) if catalog.exists() else ()
    cases = []
    for item in yaml.safe_load((folder / "questions.yaml").read_text("utf-8")):
        expect = str(item["expect"])
        if expect not in EXPECTS:
            raise ValueError(f"{folder.name}: unknown expect {expect!r} in {item!r}")
        cases.append(SetCase(
            text=str(item["q"]), expect=expect, sources=_tuple(item.get("sources")),
            facts=_tuple(item.get("fact")), reason=item.get("reason"),
            kinds=_tuple(item.get("kind")),
        ))
    return EvalSet(folder.name, folder, persona, articles, products, tuple(cases))


def shipped_sets(*, held_out: bool = False) -> list[Path]:
    """The sets that ship with the package; a held-out set (``held_out: true`` in its
    business.yaml) only when asked for by name or with ``held_out``."""
    root = Path(str(resources.files("knowledge").joinpath("evalsets")))
    found = sorted(p for p in root.iterdir() if (p / "questions.yaml").exists())
    return [p for p in found if held_out or not _held_out(p)]


def _held_out(folder: Path) -> bool:
    business = yaml.safe_load((folder / "business.yaml").read_text("utf-8")) or {}
    return bool(business.get("held_out", False))


# the responder's handoff reasons in the sets' labels (README of knowledge/evalsets)
_LABELS = {"customer_request": "human"}


def _plain_number(text: str) -> str:
    return _THOUSANDS.sub("", text)


def holds_fact(reply: str, facts: Sequence[str]) -> bool:
    """The reply holds one of the facts (folded; 1,299 and 1299 are one number)."""
    folded = _plain_number(fold(reply))
    return any(_plain_number(fold(f)) in folded for f in facts)


@dataclass(frozen=True, slots=True)
class CaseOutcome:
    case: SetCase
    decision: Decision
    baseline: tuple[str, ...]
    seconds: float
    invented: tuple[str, ...]
    leak: str | None

    @property
    def reply(self) -> str:
        return "\n".join(self.decision.replies)

    @property
    def source_right(self) -> bool:
        return bool(self.decision.sources) and self.decision.sources[0] in self.case.sources

    @property
    def baseline_right(self) -> bool:
        return bool(self.baseline) and self.baseline[0] in self.case.sources

    @property
    def fact_right(self) -> bool:
        return holds_fact(self.reply, self.case.facts)

    @property
    def escalation_right(self) -> bool:
        return self.decision.escalate == (self.case.expect == "escalate")

    @property
    def reason_right(self) -> bool:
        return _LABELS.get(self.decision.reason or "", self.decision.reason) == self.case.reason


@dataclass
class SetReport:
    name: str
    outcomes: list[CaseOutcome] = field(default_factory=list)

    def _count(self, cases: list[CaseOutcome], right: str) -> tuple[int, int]:
        return sum(bool(getattr(o, right)) for o in cases), len(cases)

    def figures(self) -> dict[str, tuple[int, int]]:
        answerable = [o for o in self.outcomes if o.case.expect == "answer" and o.case.sources]
        with_fact = [o for o in self.outcomes if o.case.expect == "answer" and o.case.facts]
        handed = [o for o in self.outcomes
                  if o.case.expect == "escalate" and o.case.reason and o.decision.escalate]
        return {
            "source": self._count(answerable, "source_right"),
            "baseline": self._count(answerable, "baseline_right"),
            "fact": self._count(with_fact, "fact_right"),
            "escalation": self._count(self.outcomes, "escalation_right"),
            "reason": self._count(handed, "reason_right"),
        }

    @property
    def invented(self) -> int:
        return sum(bool(o.invented) for o in self.outcomes)

    @property
    def leaks(self) -> int:
        return sum(o.leak is not None for o in self.outcomes)

    def p95_ms(self) -> float:
        times = sorted(o.seconds * 1000 for o in self.outcomes)
        if len(times) < 2:
            return times[0] if times else 0.0
        return statistics.quantiles(times, n=20)[-1]

    def summary(self) -> str:
        f = self.figures()

        def pct(key: str) -> str:
            right, total = f[key]
            return f"{right}/{total} ({right / total:.0%})" if total else "-"

        return (
            f"{self.name}: {len(self.outcomes)} questions\n"
            f"  right source first   bot {pct('source'):<14} plain fusion {pct('baseline')}\n"
            f"  fact in reply        bot {pct('fact')}\n"
            f"  escalation right     bot {pct('escalation')}\n"
            f"  handoff reason right bot {pct('reason')} (of those handed over as labelled)\n"
            f"  invented facts {self.invented}, leaks {self.leaks}, "
            f"p95 decision {self.p95_ms():.1f} ms"
        )

    def lines(self) -> list[str]:
        out = []
        for o in self.outcomes:
            c = o.case
            marks = "".join([
                ("✓" if o.source_right else "✗") if c.expect == "answer" else "·",
                ("✓" if o.baseline_right else "✗") if c.expect == "answer" else "·",
                ("✓" if o.fact_right else "✗") if c.facts else "·",
                "✓" if o.escalation_right else "✗",
                "!" if o.invented or o.leak else " ",
            ])
            out.append(
                f"{marks} {c.expect:<9} {c.text[:58]!r:62} -> {o.decision.intent:<12} "
                f"esc={o.decision.reason or '-':<16} src={list(o.decision.sources)[:2]} "
                f"want={list(c.sources)[:2]} base={list(o.baseline[:1])}"
            )
        return out


def _numbers(text: str) -> set[str]:
    return {_canon(n) for n in _NUMBER.findall(text)}


def _canon(number: str) -> str:
    plain = number.replace(",", "").rstrip(".")
    if "." in plain:
        plain = plain.rstrip("0").rstrip(".")
    return plain


def _source_texts(eval_set: EvalSet) -> dict[str, str]:
    texts = {a.id: f"{a.title}\n{a.body}" for a in eval_set.articles}
    for p in eval_set.products:
        texts[p.sku] = f"{p.name} {p.description} {p.price:.2f} {p.stock or ''} {p.currency}"
    return texts


def invented_numbers(decision: Decision, sources: dict[str, str], persona: Persona) -> tuple[
        str, ...]:
    """Numbers in the replies that no cited source (nor the business name) holds."""
    allowed = _numbers(persona.business_name)
    for source in decision.sources:
        allowed |= _numbers(sources.get(source, ""))
    if not decision.sources:  # a reply without sources may only repeat fixed texts' numbers
        allowed |= {"1", "2", "3", "4", "5", "24"}
    said = set().union(*(_numbers(r) for r in decision.replies)) if decision.replies else set()
    return tuple(sorted(said - allowed))


class SetRunner:
    """Imports a set into a fresh database and scores the bot and the baseline on it."""

    def __init__(self, settings: Settings, admin_url: str, *, usem: UsemEmbedder,
                 e5: E5Embedder) -> None:
        self._settings = settings
        self._admin_url = admin_url
        self._usem, self._e5 = usem, e5

    async def run(self, eval_set: EvalSet) -> SetReport:
        url = fresh_database(self._admin_url, eval_set.name)
        migrate(url)
        engine = create_engine(url, pool_size=2)
        try:
            sessions = session_factory(engine)
            # the shared e5 (its cache survives the sets), unless the settings turn it off
            second = self._e5 if self._settings.knowledge.second_embedder == "e5" else None
            answering = build_answering(unhurried(self._settings), sessions,
                                        embedder=self._usem, second=second,
                                        persona=eval_set.persona)
            report = await answering.knowledge.import_files(eval_set.files(), editor="eval")
            if report.failed:
                raise ValueError(f"{eval_set.name}: import failed: {report.summary()}")
            await answering.intent_examples.seed()
            return await self._score(eval_set, answering.responder, answering.knowledge)
        finally:
            await engine.dispose()

    async def _score(self, eval_set: EvalSet, responder: Responder,
                     store: KnowledgeStore) -> SetReport:
        baseline = PlainFusion(
            paragraph_chunks(eval_set.articles, eval_set.products), self._usem, self._e5
        )
        sources = _source_texts(eval_set)
        persona = eval_set.persona
        rules = system_rules(PersonaText(persona.bot_name, persona.business_name),
                             language="es", canary="", example_id="id")
        report = SetReport(eval_set.name)
        for case in eval_set.cases:
            started = time.perf_counter()
            decision = await responder.respond(ResponseRequest(
                conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), text=case.text))
            seconds = time.perf_counter() - started
            ranked = tuple((await baseline.rank(case.text))[:3])
            leak = next((x for r in decision.replies
                         if (x := leaked(r, rules_text=rules, canary="", secrets=())) is not None),
                        None)
            report.outcomes.append(CaseOutcome(
                case, decision, ranked, seconds,
                invented_numbers(decision, sources, persona), leak,
            ))
        return report


def fresh_database(admin_url: str, name: str) -> str:
    import psycopg

    db = "eval_" + re.sub(r"[^a-z0-9_]", "_", name.lower())[:40]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
        conn.execute(f'CREATE DATABASE "{db}"')
    host = admin_url.split("host=", 1)[1]
    return f"postgresql://postgres@/{db}?host={host}"


async def run_sets(settings: Settings, folders: Sequence[Path]) -> list[SetReport]:
    """Every set on one throwaway PostgreSQL (deleted at the end)."""
    from bot.infra.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="atiende-eval-")) / "pgdata",
                              delete_on_stop=True)
    url = server.start()
    host = url.split("host=", 1)[1]
    admin = f"postgresql://postgres@/postgres?host={host}"
    usem = UsemEmbedder(threads=settings.knowledge.embedder_threads)
    runner = SetRunner(settings, admin, usem=usem, e5=E5Embedder())
    try:
        return [await runner.run(load_set(folder)) for folder in folders]
    finally:
        server.stop()
