"""LLM drafts of pending suggestions, written by the worker's periodic job.

Without an LLM (or when its draft fails the checks) nothing is stored and the admin
sees the agents' own reply as the draft (``knowledge.suggestions``).
"""

from __future__ import annotations

import asyncio

from bot.answering.generation import ArticleDrafter, DraftRequest, PersonaText
from bot.logs import get_logger
from knowledge.suggestions import Draft, SuggestionStore

log = get_logger("atiende.learning")


class SuggestionDrafts:
    """Drafts the suggestions whose items changed since their last draft."""

    def __init__(self, suggestions: SuggestionStore, drafter: ArticleDrafter | None, *,
                 persona: PersonaText, language: str, timeout_seconds: float,
                 per_tick: int) -> None:
        self._suggestions = suggestions
        self._drafter = drafter
        self._persona = persona
        self._language = language
        self._timeout = timeout_seconds
        self._per_tick = per_tick

    async def run(self) -> int:
        """Draft up to ``per_tick`` suggestions; returns how many got an LLM draft.

        With no LLM configured nothing is marked: the suggestions waiting then are drafted
        once one is (a draft that fails the checks is not tried again until new items)."""
        if self._drafter is None or not self._drafter.ready:
            return 0
        drafted = 0
        for due in await self._suggestions.drafts_due(limit=self._per_tick):
            deadline = asyncio.get_running_loop().time() + self._timeout
            result = await self._drafter.draft(DraftRequest(
                questions=due.questions, replies=due.replies, language=self._language,
                persona=self._persona, deadline=deadline,
            ))
            if result is None:
                await self._suggestions.skip_drafting(due.id, items=due.items)
                continue
            await self._suggestions.save_draft(
                due.id, Draft(result.title, result.body, "llm", result.model), items=due.items)
            log.info("suggestions.drafted", suggestion_id=str(due.id), model=result.model)
            drafted += 1
        return drafted
