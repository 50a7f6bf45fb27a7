"""The cascade: a plain question the first model answers surely skips the second model."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.responder import Decision, Persona, ResponseRequest
from bot.settings import Settings
from bot.wiring.answering import Answering, build_answering
from knowledge.config import KnowledgeConfig
from knowledge.demo import demo_files
from knowledge.embeddings import Embedder, Vector
from knowledge.intents import IntentExamples, seed_examples, shipped_second_vectors


class Counted:
    """The second model, counting the questions it embeds (the Embedder port)."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self.questions = 0

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dimensions(self) -> int:
        return self._inner.dimensions

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        return await self._inner.embed(texts)

    async def embed_queries(self, texts: Sequence[str]) -> list[Vector]:
        self.questions += len(texts)
        return [list(v) for v in await self._inner.embed_queries(texts)]  # type: ignore[attr-defined]


async def _demo(settings: Settings, sessions: async_sessionmaker[AsyncSession],
                embedder: Embedder, second: Counted) -> Answering:
    answering = build_answering(settings, sessions, embedder=embedder, second=second,  # type: ignore[arg-type]
                                persona=Persona("Sofía", "Seguros Demo"))
    report = await answering.knowledge.import_files(demo_files(), editor="test")
    assert not report.failed, report.summary()
    await answering.intent_examples.seed()
    await _ask(answering, "hola, ¿qué seguros venden?")  # loads the intent examples
    second.questions = 0
    return answering


async def _ask(answering: Answering, text: str) -> Decision:
    return await answering.responder.respond(ResponseRequest(
        conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), text=text))


def _with_threshold(settings: Settings, value: float) -> Settings:
    knowledge = settings.knowledge.model_copy(update={"first_model_confidence": value})
    return settings.model_copy(update={"knowledge": knowledge})


async def test_a_sure_question_skips_the_second_model_and_gets_the_same_answer(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], kb_embedder: Embedder,
    kb_second: Embedder,
) -> None:
    question = "oigan, ¿puedo pagar en el oxxo?"
    quick = Counted(kb_second)
    fast = await _ask(await _demo(settings, sessions, kb_embedder, quick), question)
    assert quick.questions == 0
    assert fast.sources[:1] == ("formas-pago",) and "OXXO" in fast.replies[0]

    both = Counted(kb_second)
    slow = await _ask(await _demo(_with_threshold(settings, 1.0), sessions, kb_embedder, both),
                      question)
    assert both.questions >= 1  # the shortcut off: both models decide
    assert slow.sources[:1] == fast.sources[:1]


async def test_requests_for_a_person_and_doubtful_questions_use_both_models(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], kb_embedder: Embedder,
    kb_second: Embedder,
) -> None:
    second = Counted(kb_second)
    answering = await _demo(settings, sessions, kb_embedder, second)
    buy = await _ask(answering, "ya me decidí, quiero contratar el seguro de auto amplio hoy mismo")
    assert second.questions >= 1
    assert buy.escalate
    second.questions = 0
    away = await _ask(answering, "¿venden seguros para motos?")
    assert second.questions >= 1 and away.escalate and away.sources == ()


async def test_behind_a_backlog_the_first_model_decides_alone(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], kb_embedder: Embedder,
    kb_second: Embedder,
) -> None:
    """A message that waited past ``second_model_max_wait`` for a worker skips the second
    model even where both would decide (a doubtful question, a purchase); on time, it
    does not. The decision stays a sensible one."""
    wait = KnowledgeConfig().second_model_max_wait  # the default
    assert wait > 0
    busy = settings.knowledge.model_copy(update={"second_model_max_wait": wait})
    second = Counted(kb_second)
    answering = await _demo(settings.model_copy(update={"knowledge": busy}), sessions,
                            kb_embedder, second)

    async def ask(text: str, waited: float) -> Decision:
        return await answering.responder.respond(ResponseRequest(
            conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), text=text, waited=waited))

    buy = "ya me decidí, quiero contratar el seguro de auto amplio hoy mismo"
    late = await ask(buy, wait + 5)
    assert second.questions == 0
    assert late.escalate  # the first model's request model still hands it over
    pay = await ask("oye y si no me alcanza, puedo pagar la poliza en mensualidades?", wait + 5)
    assert second.questions == 0 and pay.sources[:1] == ("formas-pago",), pay
    on_time = await ask(buy, wait / 2)
    assert second.questions >= 1 and on_time.escalate
    second.questions = 0
    off = settings.knowledge.model_copy(update={"second_model_max_wait": 0.0})
    patient = Counted(kb_second)
    answering = await _demo(settings.model_copy(update={"knowledge": off}), sessions,
                            kb_embedder, patient)
    await answering.responder.respond(ResponseRequest(
        conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), text=buy, waited=3600.0))
    assert patient.questions >= 1  # 0 turns the shortcut off


async def test_questions_beyond_the_second_model_s_queue_are_decided_by_the_first(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], kb_embedder: Embedder,
    kb_second: Embedder,
) -> None:
    """The second model's engine runs one question at a time: past
    ``second_model_queue`` questions waiting for it, the next ones do not queue."""
    buys = ["ya me decidí, quiero contratar el seguro de auto amplio hoy mismo",
            "ya me decidí, quiero contratar hoy el seguro de hogar para mi casa",
            "ya me decidi, contrato el seguro de vida hoy, como le hacemos"]
    for queue, most in ((1, len(buys) - 1), (0, None)):
        knowledge = settings.knowledge.model_copy(update={"second_model_queue": queue})
        second = Counted(kb_second)
        answering = await _demo(settings.model_copy(update={"knowledge": knowledge}),
                                sessions, kb_embedder, second)
        decisions = await asyncio.gather(*(_ask(answering, text) for text in buys))
        # handed over, or answered from the base (the first model alone may take a
        # purchase for a question about signing up: the price of answering at once)
        assert all(d.escalate or d.sources for d in decisions), decisions
        if most is not None:
            assert 1 <= second.questions <= most  # at least one did not wait for it
        else:
            assert second.questions >= len(buys)  # 0: no limit
            assert all(d.escalate and d.reason == "sales" for d in decisions), decisions


async def test_intent_examples_keep_their_second_vectors(
    sessions: async_sessionmaker[AsyncSession], kb_embedder: Embedder, kb_second: Embedder,
) -> None:
    """The second model's vectors of the examples are stored, not computed at every start
    (the first customer after a restart waited seconds for them)."""
    examples = IntentExamples(sessions, kb_embedder)
    await examples.seed()
    counted = Counted(kb_second)
    first = await examples.second_vectors(counted)  # type: ignore[arg-type]
    assert len(first) == len(await examples.texts())
    assert counted.questions == 0  # the shipped examples' vectors ship with the package
    assert await examples.second_vectors(counted) == first  # type: ignore[arg-type]
    assert counted.questions == 0
    await examples.add("question", "cuanto cuesta el envio a merida", created_by="test")
    more = await examples.second_vectors(counted)  # type: ignore[arg-type]
    assert counted.questions == 1 and len(more) == len(first) + 1


async def test_the_shipped_second_vectors_match_the_shipped_examples(kb_second: Embedder) -> None:
    """After editing knowledge/data/intents.yaml, run `make intent-vectors`."""
    shipped = shipped_second_vectors(kb_second.name)
    texts = sorted({t for values in seed_examples().values() for t in values})
    assert sorted(shipped) == texts
    sample = texts[:: max(1, len(texts) // 8)]
    fresh = await kb_second.embed_queries(sample)  # type: ignore[attr-defined]
    for text, vector in zip(sample, fresh, strict=True):
        a, b = np.array(shipped[text]), np.array(vector)
        assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > 0.999, text


HOME = """---
id: seguro-hogar
title: Seguro de hogar
questions:
  - "¿el perro de mi hijo también queda cubierto?"
---
# Seguro de hogar

Responde por los daños a terceros que cause cualquier integrante de la familia o sus
animales de compañía, hasta $500,000 por evento.
""".encode()


def _pet_article(n: int) -> tuple[str, bytes]:
    return (f"p{n}.md", f"""---
id: perros-{n}
title: Perros {n}
---
# Perros {n}

El perro número {n} de la sucursal recibe su vacuna y su baño cada {n + 2} semanas.
""".encode())


async def test_an_example_question_brings_its_article_even_when_its_passages_are_far(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], kb_embedder: Embedder,
    kb_second: Embedder,
) -> None:
    # a small candidate list: the article's passage is not among the nearest, only the
    # example question an admin wrote for it is
    knowledge = settings.knowledge.model_copy(update={"candidates": 2})
    answering = build_answering(settings.model_copy(update={"knowledge": knowledge}), sessions,
                                embedder=kb_embedder, second=kb_second,
                                persona=Persona("Sofía", "Seguros Demo"))
    files = [("hogar.md", HOME), *(_pet_article(n) for n in range(12))]
    report = await answering.knowledge.import_files(files, editor="test")
    assert not report.failed, report.summary()
    await answering.intent_examples.seed()
    decision = await _ask(answering, "¿el perro de mi hijo también queda cubierto?")
    assert decision.sources[:1] == ("seguro-hogar",), decision
    assert "$500,000" in decision.replies[0]
