"""A provider's embedding model through litellm (real HTTP to a local OpenAI-compatible
server): other dimensions than the default, its own HNSW index, re-embedding on a model
change, and provider failures that leave nothing half-written."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.llm.embeddings import ProviderEmbedder
from bot.llm.scripted import Behaviour, ScriptedServer
from bot.wiring.answering import build_embedder
from knowledge.config import KnowledgeConfig
from knowledge.embeddings import HashingEmbedder
from knowledge.errors import EmbeddingError
from knowledge.intents import IntentExamples, NearestExamples
from knowledge.models import Article, Chunk, EmbeddingStaging
from knowledge.retrieval import Retriever
from knowledge.store import KnowledgeStore
from knowledge.vectors import index_name

Make = Callable[[KnowledgeConfig], ProviderEmbedder]
PAGOS = b"""---
id: formas-pago
title: Formas de pago
kind: policy
---
# Formas de pago

Puedes pagar con tarjeta, transferencia SPEI o en efectivo en OXXO.
"""
HORARIO = b"""---
id: horario
title: Horario de atencion
kind: faq
---
Atendemos de lunes a viernes de 9 a 18 horas y sabados de 9 a 14.
"""
SINIESTRO = b"""---
id: siniestro
title: Reportar un choque
kind: faq
---
Si chocaste llama a la cabina de siniestros, un ajustador llega en 40 minutos.
"""
CATALOG = (
    b"sku,name,description,price,currency,stock,category\n"
    b"KIT-VIAL,Kit vial,Triangulos cables y extintor,899.00,MXN,25,Accesorios\n"
)
FILES = [("pagos.md", PAGOS), ("horario.md", HORARIO), ("siniestro.md", SINIESTRO),
         ("catalogo.csv", CATALOG)]


@pytest.fixture
async def make_embedder() -> AsyncIterator[Callable[[KnowledgeConfig], ProviderEmbedder]]:
    """Provider embedders built from settings, closed at the end of the test."""
    made: list[ProviderEmbedder] = []

    def make(config: KnowledgeConfig) -> ProviderEmbedder:
        embedder = build_embedder(config)
        assert isinstance(embedder, ProviderEmbedder)
        made.append(embedder)
        return embedder

    yield make
    for embedder in made:
        await embedder.aclose()


def provider_config(server: ScriptedServer, **extra: object) -> KnowledgeConfig:
    return KnowledgeConfig.model_validate({
        "embedding_model": "openai/bow-embed", "embedding_api_base": server.url,
        "embedding_api_key": "sk-test", "embedding_retries": 0, "embedding_timeout": 5,
        "embedding_batch": 2, **extra,
    })


async def models_in_use(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as s:
        rows = (await s.execute(
            select(Chunk.model, func.vector_dims(Chunk.embedding), func.count())
            .group_by(Chunk.model, func.vector_dims(Chunk.embedding))
        )).all()
    return {f"{model}/{dims}": count for model, dims, count in rows}


async def vector_indexes(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as s:
        return list((await s.scalars(text(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'kb_chunks' "
            "AND indexname LIKE 'ix_kb_chunks_vec_%'"))).all())


def test_settings_select_the_provider() -> None:
    config = KnowledgeConfig.model_validate({"embedding_model": "openai/text-embedding-3-small",
                                             "embedding_dimensions": 256})
    assert config.embedder == "litellm"
    embedder = ProviderEmbedder(config)
    assert isinstance(build_embedder(config), ProviderEmbedder)
    assert embedder.name == "litellm:openai/text-embedding-3-small@256"
    with pytest.raises(ValueError, match="EMBEDDING_MODEL"):
        KnowledgeConfig.model_validate({"embedder": "litellm"})
    with pytest.raises(ValueError, match="outside"):
        ProviderEmbedder(KnowledgeConfig.model_validate({"embedding_model": "x'; drop"}))


async def test_model_change_reembeds_into_another_dimension(
    sessions: async_sessionmaker[AsyncSession], provider: ScriptedServer, make_embedder: Make
) -> None:
    old = KnowledgeStore(sessions, HashingEmbedder())
    report = await old.import_files(FILES, editor="ana")
    assert not report.failed
    assert await models_in_use(sessions) == {"hashing-trigram-512/512": 4}

    embedder = make_embedder(provider_config(provider))
    new = KnowledgeStore(sessions, embedder)
    revision = await new.revision()
    assert await new.reembed() == 4
    assert await models_in_use(sessions) == {"litellm:openai/bow-embed/64": 4}
    assert await new.revision() > revision
    indexes = await vector_indexes(sessions)
    assert len(indexes) == 1 and "vector(64)" in indexes[0]
    assert "litellm:openai/bow-embed" in indexes[0]
    assert provider.calls == 2  # batches of 2, through real HTTP
    assert provider.received[0].authorization == "Bearer sk-test"
    assert provider.received[0].body["model"] == "bow-embed"
    assert await new.reembed() == 0  # nothing stale any more

    retriever = Retriever(sessions, embedder)
    found = await retriever.search("¿puedo pagar en efectivo en el oxxo?")
    assert found.hits[0].source_id == "formas-pago" and found.hits[0].similarity > 0.3
    found = await retriever.search("me choque que hago, ajustador")
    assert found.hits[0].source_id == "siniestro"

    # the planner walks the model's partial index for the vector query
    from knowledge.store import vector_literal
    from knowledge.vectors import nearest_sql

    vector = (await embedder.embed(["horario sabados"]))[0]
    async with sessions() as s, s.begin():
        await s.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join((await s.execute(
            text("EXPLAIN " + str(nearest_sql(embedder.name, 64, by_kind=False))),
            {"q": vector_literal(vector), "k": 5, "kind": None})).scalars().all())
    assert index_name(embedder.name) in plan

    # a new article saved under the provider model is searchable at once
    await new.save_article(_doc("domingos", "Domingos", "Abrimos domingos de 10 a 13 horas."),
                           editor="ana")
    found = await retriever.search("abren los domingos?")
    assert found.hits[0].source_id == "domingos"

    # intent examples follow the model change too
    examples = IntentExamples(sessions, HashingEmbedder())
    await examples.add("complaint", "pesimo servicio estoy muy molesto", created_by="ana")
    await examples.add("greeting", "hola buenas tardes", created_by="ana")
    moved = IntentExamples(sessions, embedder)
    pairs = await moved.vectors()
    assert {len(v) for _, v in pairs} == {64}
    nearest = NearestExamples(pairs)
    label = nearest.classify((await embedder.embed(["estoy muy molesto con el servicio"]))[0])
    assert label is not None and label.label == "complaint"


def _doc(doc_id: str, title: str, body: str):  # type: ignore[no-untyped-def]
    from knowledge.documents import validate_article

    return validate_article(doc_id, id=doc_id, title=title, kind="faq", tags=[], body=body,
                            questions=[])


async def test_more_dimensions_than_vector_indexes_use_halfvec(
    sessions: async_sessionmaker[AsyncSession], provider: ScriptedServer, make_embedder: Make
) -> None:
    # litellm passes ``dimensions`` on only for models that take it (text-embedding-3)
    embedder = make_embedder(provider_config(
        provider, embedding_model="openai/text-embedding-3-small", embedding_dimensions=2500))
    store = KnowledgeStore(sessions, embedder)
    assert not (await store.import_files(FILES[:2], editor="ana")).failed
    assert provider.received[0].body["dimensions"] == 2500
    assert await models_in_use(sessions) == {"litellm:openai/text-embedding-3-small@2500/2500": 2}
    assert any("halfvec(2500)" in i for i in await vector_indexes(sessions))
    found = await Retriever(sessions, embedder).search("pagar con tarjeta o spei")
    assert found.hits[0].source_id == "formas-pago"


async def test_provider_failure_writes_nothing(
    sessions: async_sessionmaker[AsyncSession], provider: ScriptedServer, make_embedder: Make
) -> None:
    old = KnowledgeStore(sessions, HashingEmbedder())
    assert not (await old.import_files(FILES, editor="ana")).failed
    before = await models_in_use(sessions)
    revision = await old.revision()

    embedder = make_embedder(provider_config(provider))
    store = KnowledgeStore(sessions, embedder)

    # the provider answers 500: a save is refused with the reason, nothing stored
    provider.default = Behaviour.error(500)
    with pytest.raises(EmbeddingError, match="bow-embed.*failed"):
        await store.save_article(_doc("nuevo", "Nuevo", "Texto nuevo."), editor="ana")
    report = await store.import_files([("nuevo.md", PAGOS.replace(b"formas-pago", b"otro"))],
                                      editor="ana")
    assert report.failed and "failed" in (report.failed[0].error or "")
    async with sessions() as s:
        assert await s.get(Article, "nuevo") is None and await s.get(Article, "otro") is None

    # a re-embed that fails halfway: the live vectors are all still the old model's
    provider.default = Behaviour.answer("ok")
    provider.script(Behaviour.answer("ok"), Behaviour.error(503))
    with pytest.raises(EmbeddingError):
        await store.reembed(batch=2)
    assert await models_in_use(sessions) == before
    assert await old.revision() == revision
    async with sessions() as s:
        staged = await s.scalar(select(func.count()).select_from(EmbeddingStaging))
    assert staged == 2  # the first batch is kept and not asked for again
    found = await Retriever(sessions, HashingEmbedder()).search("pagar en oxxo")
    assert found.hits[0].source_id == "formas-pago"  # the old model still serves

    # malformed answers and hangs are failures too, with a reason
    provider.script(Behaviour.malformed())
    with pytest.raises(EmbeddingError):
        await store.reembed()
    slow = make_embedder(provider_config(provider, embedding_timeout=0.5))
    provider.script(Behaviour.hang(5))
    with pytest.raises(EmbeddingError, match="Timeout|timed out"):
        await slow.embed(["hola"])
    assert await models_in_use(sessions) == before

    # the provider is back: the re-embed resumes and swaps everything at once
    calls = provider.calls
    assert await store.reembed(batch=2) == 4
    assert provider.calls - calls == 1  # the 2 chunks not staged yet
    assert await models_in_use(sessions) == {"litellm:openai/bow-embed/64": 4}
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(EmbeddingStaging)) == 0
