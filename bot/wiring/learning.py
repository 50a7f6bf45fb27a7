"""Wiring of learning from agents: the suggestion store, harvester and drafts."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.answering.generation import ArticleDrafter, PersonaText
from bot.learning import LearningService
from bot.learning.drafting import SuggestionDrafts
from bot.learning.harvest import Harvester
from bot.settings import Settings
from knowledge.store import KnowledgeStore
from knowledge.suggestions import SuggestionStore
from knowledge.synonyms import load_synonyms


def build_learning(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], knowledge: KnowledgeStore,
    *, drafter: ArticleDrafter | None,
) -> LearningService:
    """Suggestions grouped with the knowledge base's embedder and synonyms; drafts by the
    LLM chain's drafter (it answers None while no chain is configured)."""
    config = settings.suggestions
    suggestions = SuggestionStore(
        sessions, knowledge, synonyms=load_synonyms(settings.knowledge.synonyms_file),
        similarity=config.group_similarity,
    )
    drafts = SuggestionDrafts(
        suggestions, drafter,
        persona=PersonaText(settings.bot_name, settings.business_name),
        language=settings.language, timeout_seconds=config.draft_timeout_seconds,
        per_tick=config.drafts_per_tick,
    )
    return LearningService(suggestions=suggestions, harvester=Harvester(sessions, suggestions),
                           drafts=drafts)
