"""Hybrid retrieval: query synonyms (shipped + the business's file), one-statement search,
and the exact-vs-index nearest neighbours the bench's recall uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.wiring.answering import build_retriever
from knowledge.config import KnowledgeConfig
from knowledge.embeddings import HashingEmbedder
from knowledge.errors import DocumentError
from knowledge.retrieval import Retriever
from knowledge.store import KnowledgeStore
from knowledge.synonyms import Synonyms, load_synonyms, parse_synonyms

GRUA = b"""---
id: asistencia-vial
title: Asistencia vial
kind: faq
tags: [asistencia]
---
# Asistencia vial

Te mandamos una grua hasta 3 veces al ano, sin costo.
"""
HOGAR = b"""---
id: seguro-hogar
title: Seguro de hogar
kind: product
tags: [hogar]
---
# Seguro de hogar

Cubre incendio y sismo en tu vivienda.
"""


def test_shipped_synonyms_are_general_language_and_the_demo_has_its_own() -> None:
    synonyms = load_synonyms()
    assert len(synonyms) > 100
    assert "documentos" in synonyms.terms("q papeles ocupo?")
    assert "transferencia" in synonyms.terms("can I pay by bank transfer?")
    assert "dinero" in synonyms.terms("me regresan la lana?")
    # nothing about one business ships in the general list
    assert "auto" not in synonyms.terms("me chocaron la TROCA")
    demo = load_synonyms(Path(__file__).resolve().parents[2] / "knowledge/demo/synonyms.yaml")
    assert "auto" in demo.terms("me chocaron la TROCA")
    assert "grua" in demo.terms("how many tow trucks do I get?")
    # already in the question: nothing added
    assert "documentos" not in synonyms.terms("necesito documentos")
    assert synonyms.expand("hola") == "hola"


def test_canonical_replaces_synonyms_and_drops_fillers() -> None:
    synonyms = load_synonyms()
    assert synonyms.canonical("oye q papeles ocupo pa abrir la cuenta porfa") == (
        "que documentos necesito para abrir la cuenta"
    )


def test_business_file_extends_the_shipped_list(tmp_path: Path) -> None:
    own = tmp_path / "mine.yaml"
    own.write_text("grua: [remolcador]\nmotoneta: [scooter, moto]\n", "utf-8")
    synonyms = load_synonyms(own)
    assert synonyms.terms("piden remolcador?") == ("grua",)
    assert synonyms.terms("seguro para scooter") == ("motoneta",)
    assert "efectivo" in synonyms.terms("pay cash")  # the shipped entries stay


@pytest.mark.parametrize("raw", ["[a, b]", "grua: remolque", "grua: [a, {b: c}]", "a: [b"])
def test_malformed_synonyms_file_names_the_file(tmp_path: Path, raw: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(raw, "utf-8")
    with pytest.raises(DocumentError) as info:
        load_synonyms(bad)
    assert str(bad) in str(info.value)
    with pytest.raises(DocumentError):
        load_synonyms(tmp_path / "missing.yaml")


def test_merge_keeps_every_target() -> None:
    a = Synonyms.from_mapping({"auto": ["nave"]})
    b = Synonyms.from_mapping({"barco": ["nave"]})
    assert a.merged(b).terms("mi nave") == ("auto", "barco")
    assert parse_synonyms("", source="empty.yaml").terms("nave") == ()


async def test_synonyms_reach_the_full_text_half(
    store: KnowledgeStore, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    report = await store.import_files([("a.md", GRUA), ("b.md", HOGAR)], editor="ana")
    assert not report.failed
    embedder = HashingEmbedder()
    plain = Retriever(sessions, embedder)
    vector = (await embedder.embed(["tow truck please"]))[0]
    without = await plain.search_vector("tow truck please", vector, unknown=True)
    assert all(h.text_rank == 0 for h in without.hits)
    assert "tow" in without.unknown_terms

    own = tmp_path / "mine.yaml"
    own.write_text("grua: [tow truck]\nsismo: [quake]\n", "utf-8")
    retriever = build_retriever(sessions, embedder, KnowledgeConfig(
        embedder="hashing", synonyms_file=own))
    found = await retriever.search_vector("tow truck please", vector, unknown=True)
    lexical = [h for h in found.hits if h.text_rank > 0]
    assert lexical and lexical[0].source_id == "asistencia-vial"
    assert found.unknown_terms == ()  # "tow truck" stands for a word the base uses
    quake = await retriever.search("quake")
    assert quake.ranked[0].source_id == "seguro-hogar"
    assert quake.hits[0].text_rank > 0


async def test_nearest_matches_exact_search_and_skips_other_models(
    store: KnowledgeStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await store.import_files([("a.md", GRUA), ("b.md", HOGAR)], editor="ana")
    embedder = HashingEmbedder()
    retriever = Retriever(sessions, embedder, ef_search=40)
    vector = (await embedder.embed(["grua sin costo"]))[0]
    approx = await retriever.nearest(vector, k=5)
    exact = await retriever.nearest(vector, k=5, exact=True)
    assert approx == exact and len(exact) == 2  # one passage per article

    class Other(HashingEmbedder):
        @property
        def name(self) -> str:
            return "another-model"

    other = Retriever(sessions, Other())
    assert await other.nearest(vector, k=3) == []
    found = await other.search_vector("grua sin costo", vector)
    # only full-text candidates: the other model's vectors are not this model's
    assert found.hits and all(h.text_rank > 0 for h in found.hits)
    assert found.ranked[0].source_id == "asistencia-vial"


async def test_bm25_is_a_share_of_what_the_question_could_score(
    store: KnowledgeStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await store.import_files([("a.md", GRUA), ("b.md", HOGAR)], editor="ana")
    embedder = HashingEmbedder()
    retriever = Retriever(sessions, embedder)
    vector = (await embedder.embed(["grua para mi casa"]))[0]
    pool, unknown, _ = await retriever.pool("grua sin costo incendio", vector, unknown=True)
    assert unknown == ()
    by_source = {c.source_id: c for c in pool if c.bm25 > 0}
    assert set(by_source) == {"asistencia-vial", "seguro-hogar"}
    assert all(0 < c.bm25 <= 1 for c in by_source.values())
    # the article holding more of the question's (rarer) words scores more
    assert by_source["asistencia-vial"].bm25 > by_source["seguro-hogar"].bm25
    assert all(-1.0 <= c.use <= 1.0 and c.e5 is None for c in pool)  # no second model here


async def test_ranking_fuses_signals_per_question_and_is_deterministic(
    store: KnowledgeStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await store.import_files([("a.md", GRUA), ("b.md", HOGAR)], editor="ana")
    embedder = HashingEmbedder()
    retriever = Retriever(sessions, embedder)
    vector = (await embedder.embed(["grua para mi casa"]))[0]
    first = await retriever.search_vector("grua para mi casa", vector, limit=10)
    again = await retriever.search_vector("grua para mi casa", vector, limit=10)
    assert [s.source_id for s in first.ranked] == [s.source_id for s in again.ranked]
    assert {s.source_id for s in first.ranked} == {"asistencia-vial", "seguro-hogar"}
    assert all(0.0 <= s.confidence <= 1.0 for s in first.ranked)
    assert first.sources() == tuple(s.source_id for s in first.ranked)
    top = await retriever.search_vector("grua para mi casa", vector, limit=1)
    assert len(top.hits) == 1 and top.hits[0].chunk_id == first.hits[0].chunk_id


async def test_search_sets_hnsw_once_per_connection_and_leaves_it_transactional(
    store: KnowledgeStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await store.import_files([("a.md", GRUA)], editor="ana")
    embedder = HashingEmbedder()
    retriever = Retriever(sessions, embedder, ef_search=57)
    for _ in range(3):
        await retriever.search("grua")
    engine = sessions.kw["bind"]
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert raw.info["atiende_hnsw_ef_search"] == 57
        driver = raw.driver_connection
        assert driver is not None and driver.autocommit is False  # the ORM's mode is back
        ef = await (await driver.execute("SHOW hnsw.ef_search")).fetchone()
        mode = await (await driver.execute("SHOW hnsw.iterative_scan")).fetchone()
        await driver.rollback()
    assert ef == ("57",) and mode == ("strict_order",)


async def test_query_vector_embeds_the_knowledge_base_wording(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    embedder = HashingEmbedder()
    retriever = Retriever(sessions, embedder, synonyms=load_synonyms())
    raw = (await embedder.embed(["oye porfa q papeles ocupo"]))[0]
    searched = await retriever.query_vector("oye porfa q papeles ocupo", raw)
    assert searched == (await embedder.embed(["que documentos necesito"]))[0]
    assert searched != raw
    plain = (await embedder.embed(["necesito una grua"]))[0]
    assert await retriever.query_vector("necesito una grua", plain) is plain  # nothing to change
    assert await retriever.query_vector("oye porfa", raw) is raw  # only fillers: the raw one
