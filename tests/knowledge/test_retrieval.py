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
from knowledge.retrieval import Retriever, common_limit, fuse
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


def test_shipped_synonyms_expand_slang_and_english() -> None:
    synonyms = load_synonyms()
    assert len(synonyms) > 100
    assert "grua" in synonyms.terms("how many tow trucks do I get?")
    assert "auto" in synonyms.terms("me chocaron la TROCA")
    assert "transferencia" in synonyms.terms("can I pay by bank transfer?")
    # already in the question: nothing added
    assert "grua" not in synonyms.terms("necesito una grúa")
    assert synonyms.expand("hola") == "hola"


def test_canonical_replaces_synonyms_and_drops_fillers() -> None:
    synonyms = load_synonyms()
    assert synonyms.canonical("oye cuánto cuesta asegurar la troca porfa") == (
        "cuanto precio asegurar la auto"
    )


def test_business_file_extends_the_shipped_list(tmp_path: Path) -> None:
    own = tmp_path / "mine.yaml"
    own.write_text("grua: [remolcador]\nmotoneta: [scooter, moto]\n", "utf-8")
    synonyms = load_synonyms(own)
    assert synonyms.terms("mandan remolcador?") == ("grua",)
    assert synonyms.terms("seguro para scooter") == ("motoneta",)
    assert "grua" in synonyms.terms("tow truck")  # the shipped entries stay


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
    assert all(h.lexical_rank is None for h in without.hits)
    assert "tow" in without.unknown_terms

    own = tmp_path / "mine.yaml"
    own.write_text("sismo: [quake]\n", "utf-8")
    retriever = build_retriever(sessions, embedder, KnowledgeConfig(
        embedder="hashing", synonyms_file=own))
    found = await retriever.search_vector("tow truck please", vector, unknown=True)
    lexical = [h for h in found.hits if h.lexical_rank is not None]
    assert lexical and lexical[0].source_id == "asistencia-vial"
    assert found.unknown_terms == ()  # "tow truck" stands for a word the base uses
    quake = await retriever.search("quake")
    assert quake.hits[0].source_id == "seguro-hogar"
    assert quake.hits[0].lexical_rank == 0


async def test_nearest_matches_exact_search_and_skips_other_models(
    store: KnowledgeStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await store.import_files([("a.md", GRUA), ("b.md", HOGAR)], editor="ana")
    embedder = HashingEmbedder()
    retriever = Retriever(sessions, embedder, ef_search=40)
    vector = (await embedder.embed(["grua sin costo"]))[0]
    approx = await retriever.nearest(vector, k=5)
    exact = await retriever.nearest(vector, k=5, exact=True)
    assert approx == exact and len(exact) == 2  # one chunk per article

    class Other(HashingEmbedder):
        @property
        def name(self) -> str:
            return "another-model"

    other = Retriever(sessions, Other())
    assert await other.nearest(vector, k=3) == []
    found = await other.search_vector("grua sin costo", vector)
    assert all(h.vector_rank is None for h in found.hits)  # only full-text hits
    assert found.hits and found.hits[0].source_id == "asistencia-vial"


def test_common_words_limit_scales_with_the_base_and_is_capped() -> None:
    assert common_limit(0) == 3.0  # a tiny base keeps its words
    assert common_limit(143) == pytest.approx(0.2 * 143)  # the demo: a fifth of the chunks
    assert common_limit(50_000) == 1000.0  # a big base: capped


async def test_fusion_in_sql_is_weighted_reciprocal_rank(
    store: KnowledgeStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await store.import_files([("a.md", GRUA), ("b.md", HOGAR)], editor="ana")
    embedder = HashingEmbedder()
    vector = (await embedder.embed(["grua para mi casa"]))[0]
    for weight, k in ((1.0, 10), (0.5, 3)):
        retriever = Retriever(sessions, embedder, lexical_weight=weight, rrf_k=k)
        found = await retriever.search_vector("grua para mi casa", vector, limit=10)
        assert len(found.hits) == 2
        assert any(h.lexical_rank is not None for h in found.hits)
        for hit in found.hits:
            expected = 0.0
            if hit.vector_rank is not None:
                expected += 1.0 / (k + hit.vector_rank + 1)
                assert -1.0 <= hit.similarity <= 1.0
            if hit.lexical_rank is not None:
                expected += weight / (k + hit.lexical_rank + 1)
                assert hit.text_rank > 0
            assert hit.score == pytest.approx(expected)
        vector_order = [h.chunk_id for h in sorted(
            (h for h in found.hits if h.vector_rank is not None), key=lambda h: h.vector_rank or 0)]
        text_order = [h.chunk_id for h in sorted(
            (h for h in found.hits if h.lexical_rank is not None),
            key=lambda h: h.lexical_rank or 0)]
        assert [h.chunk_id for h in found.hits] == [
            c for c, _ in fuse(vector_order, text_order, weights=(1.0, weight), k=k)]
        top = await retriever.search_vector("grua para mi casa", vector, limit=1)
        assert [h.chunk_id for h in top.hits] == [found.hits[0].chunk_id]


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
    raw = (await embedder.embed(["oye porfa me robaron la troca"]))[0]
    searched = await retriever.query_vector("oye porfa me robaron la troca", raw)
    assert searched == (await embedder.embed(["me robo la auto"]))[0]
    assert searched != raw
    plain = (await embedder.embed(["necesito una grua"]))[0]
    assert await retriever.query_vector("necesito una grua", plain) is plain  # nothing to change
    assert await retriever.query_vector("oye porfa", raw) is raw  # only fillers: the raw one
