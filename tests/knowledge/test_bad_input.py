"""Bad input to the knowledge responder: never an error, never an invented fact.

Empty, emoji-only, 4,000-character and mixed-language messages; a base with one article;
a base that is only a catalog; an article whose body is one huge table.
"""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.responder import Decision, Persona, ResponseRequest
from bot.settings import Settings
from bot.wiring.answering import Answering, build_answering
from knowledge.embeddings import Embedder

ONE_ARTICLE = b"""---
id: horario
title: Horario de atencion
kind: faq
tags: [horario]
---
# Horario de atencion

Atendemos de lunes a viernes de 9:00 a 18:00 y los sabados de 10:00 a 14:00.
"""
CATALOG = (
    b"sku,name,description,price,currency,stock,category\n"
    b"TAZA-01,Taza de barro,Taza artesanal de 350 ml,129.00,MXN,12,Cocina\n"
    b"JARRO-02,Jarro de barro,Jarro de 1 litro pintado a mano,249.00,MXN,0,Cocina\n"
)
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def huge_table(rows: int = 400) -> bytes:
    lines = ["| Sucursal | Ciudad | Horario | Telefono |", "|---|---|---|---|"]
    lines += [f"| Sucursal {i} | Ciudad {i % 37} | 9:00 a 18:00 | 55 1000 {i:04d} |"
              for i in range(rows)]
    body = "\n".join(lines)
    return (f"---\nid: sucursales\ntitle: Sucursales\nkind: faq\ntags: []\n---\n"
            f"# Sucursales\n\n{body}\n").encode()


async def _answering(settings: Settings, sessions: async_sessionmaker[AsyncSession],
                     embedder: Embedder, files: list[tuple[str, bytes]],
                     second: Embedder | None = None) -> Answering:
    answering = build_answering(settings, sessions, embedder=embedder, second=second,
                                persona=Persona("Ana", "Barro y Más"))
    report = await answering.knowledge.import_files(files, editor="test")
    assert not report.failed, report.summary()
    await answering.intent_examples.seed()
    return answering


async def _ask(answering: Answering, text: str) -> Decision:
    return await answering.responder.respond(ResponseRequest(
        conversation_id=uuid.uuid4(), message_id=uuid.uuid4(), text=text))


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)}


def _no_invented_numbers(decision: Decision, *sources: bytes) -> None:
    allowed = set().union(*(_numbers(s.decode()) for s in sources)) | {"1", "2", "3", "4", "5"}
    said = set().union(*(_numbers(r) for r in decision.replies)) if decision.replies else set()
    assert said <= allowed | {n + ".00" for n in allowed} | {n.split(".")[0] for n in allowed}, (
        said - allowed)


@pytest.mark.parametrize("text", [
    "", "   ", "👍", "🙏🙏🙏", "???", "!!!", "🤔 ¿?",
    # a goodbye the base has nothing on is thanked, not handed over
    "ok perfecto, que tenga bonito día", "muy amable, que le vaya bien 🙏",
    "listo, gracias, que esté bien",
])
async def test_empty_emoji_only_and_goodbyes_get_small_talk(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], kb_embedder: Embedder,
    kb_second: Embedder, text: str,
) -> None:
    answering = await _answering(
        settings, sessions, kb_embedder, [("a.md", ONE_ARTICLE)], kb_second)
    decision = await _ask(answering, text)
    assert decision.replies and not decision.escalate and decision.sources == ()


async def test_a_4000_character_message_is_answered_or_handed_over(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], kb_embedder: Embedder,
    kb_second: Embedder,
) -> None:
    answering = await _answering(
        settings, sessions, kb_embedder, [("a.md", ONE_ARTICLE)], kb_second)
    long = ("hola buenas tardes mire le escribo porque " * 100)[:3900] + " ¿a qué hora abren?"
    assert len(long) > 3900
    decision = await _ask(answering, long)
    assert decision.replies
    _no_invented_numbers(decision, ONE_ARTICLE)


async def test_mixed_language_in_one_message(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], kb_embedder: Embedder,
    kb_second: Embedder,
) -> None:
    answering = await _answering(
        settings, sessions, kb_embedder, [("a.md", ONE_ARTICLE)], kb_second)
    decision = await _ask(answering, "hi! a que hora open los sabados? what time do you close?")
    assert decision.replies
    if decision.sources:
        assert decision.sources == ("horario",)
        assert "14:00" in decision.replies[0]
    _no_invented_numbers(decision, ONE_ARTICLE)


async def test_a_base_with_one_article_hands_over_what_it_does_not_hold(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], kb_embedder: Embedder,
    kb_second: Embedder,
) -> None:
    answering = await _answering(
        settings, sessions, kb_embedder, [("a.md", ONE_ARTICLE)], kb_second)
    hours = await _ask(answering, "oigan a q hora abren el sabado??")
    assert hours.sources == ("horario",) and "10:00" in hours.replies[0]
    away = await _ask(answering, "¿hacen envíos a Monterrey y cuánto cuestan?")
    assert away.escalate and away.sources == () and away.reason in ("no_answer", "sales")
    _no_invented_numbers(away, ONE_ARTICLE)


async def test_a_base_that_is_only_a_catalog(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], kb_embedder: Embedder,
    kb_second: Embedder,
) -> None:
    answering = await _answering(settings, sessions, kb_embedder, [("c.csv", CATALOG)], kb_second)
    price = await _ask(answering, "cuanto cuesta la taza de barro?")
    assert price.sources and price.sources[0] == "TAZA-01"
    assert "$129.00 MXN" in price.replies[0]
    stock = await _ask(answering, "tienen jarro de barro en existencia?")
    assert stock.sources and stock.sources[0] == "JARRO-02"
    assert "agotado" in stock.replies[0]
    policy = await _ask(answering, "si me llega rota la taza me la cambian?")
    # no article says anything about returns: the catalog row is no answer to that
    if not policy.escalate:
        assert "cambi" not in policy.replies[0].lower()
    for decision in (price, stock, policy):
        _no_invented_numbers(decision, CATALOG)


async def test_an_article_that_is_one_huge_table(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], kb_embedder: Embedder,
    kb_second: Embedder,
) -> None:
    table = huge_table()
    answering = await _answering(settings, sessions, kb_embedder, [("t.md", table)], kb_second)
    decision = await _ask(answering, "cual es el telefono de la sucursal 123?")
    assert decision.replies
    assert all(len(r) <= 700 for r in decision.replies)  # a row, not the whole table
    if decision.sources:
        assert decision.sources == ("sucursales",)
    _no_invented_numbers(decision, table)


async def test_a_short_opener_gets_a_clarifying_question_and_a_long_vague_message_is_searched(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], kb_embedder: Embedder,
    kb_second: Embedder,
) -> None:
    from bot.answering.rules import Intent

    answering = await _answering(
        settings, sessions, kb_embedder, [("a.md", ONE_ARTICLE)], kb_second)
    opener = await _ask(answering, "oiga tengo una duda con mi pedido")
    assert opener.intent is Intent.VAGUE and not opener.escalate
    assert "?" in opener.replies[0]  # one clarifying question, no handoff
    # the intent examples call this one vague too, but it holds its question (it was
    # answered with a clarifying question before OPENER_WORDS)
    long = "x q me piden la mitad antes de arreglarme el motor?? no confian en mi o que onda"
    routed = await answering.intent_router.route(long)
    assert routed.routed.intent is Intent.VAGUE
    searched = await _ask(answering, long)
    assert searched.replies[0] != opener.replies[0]
    # searched: a base of one article about opening hours has no answer, so a person
    assert searched.escalate and searched.reason == "no_answer"
    _no_invented_numbers(searched, ONE_ARTICLE)
