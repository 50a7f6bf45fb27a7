"""``runtime.learning``: knowledge suggestions for the HTTP routes and the worker."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from bot.learning.drafting import SuggestionDrafts
from bot.learning.harvest import Harvester
from bot.logs import get_logger
from handoff.auth import Principal
from knowledge.errors import DocumentError, KnowledgeError
from knowledge.masking import leaked_items
from knowledge.suggestions import Approval, Approved, SuggestionStore, SuggestionView

log = get_logger("atiende.learning")

KIND_WORDS = {"email": "an e-mail address", "card": "a card number", "phone": "a phone number",
              "policy": "a policy or contract number", "id": "an RFC or CURP", "name": "a name"}


class LearningService:
    """Suggestions from resolved handoffs and marked replies; approve, dismiss, draft.

    Listing first files what was resolved since the last look (the worker does it every
    ``harvest_seconds`` too), so an admin never waits for the job.
    """

    def __init__(self, *, suggestions: SuggestionStore, harvester: Harvester,
                 drafts: SuggestionDrafts) -> None:
        self.suggestions = suggestions
        self.harvester = harvester
        self._drafts = drafts

    async def tick(self) -> None:
        """The periodic job: harvest resolved handoffs, then draft what changed."""
        await self._harvest()
        try:
            await self._drafts.run()
        except KnowledgeError as exc:
            log.warning("suggestions.draft_failed", error=str(exc))

    async def list(self, *, status: str | None = None, limit: int = 200
                   ) -> list[SuggestionView]:
        await self._harvest()
        return await self.suggestions.listing(status=status, limit=limit)

    async def get(self, suggestion_id: uuid.UUID) -> SuggestionView:
        return await self.suggestions.get(suggestion_id)

    async def approve(
        self, who: Principal, suggestion_id: uuid.UUID, *, body: str, title: str | None,
        article_id: str | None, questions: Sequence[str] | None,
    ) -> Approved:
        """Into the knowledge base, unless the text holds personal data that was masked."""
        approval = Approval(
            body=body, editor=who.email, title=title, article_id=article_id,
            questions=tuple(questions) if questions is not None else None,
        )
        written = "\n".join([title or "", body, *(questions or ())])
        leaks = leaked_items(written, await self.harvester.originals(suggestion_id))
        if leaks:
            kinds = sorted({KIND_WORDS[i.kind] for i in leaks})
            log.info("suggestions.approve_refused", suggestion_id=str(suggestion_id),
                     kinds=kinds)
            raise DocumentError(f"suggestion {suggestion_id}",
                                "the text holds personal data that was masked in the "
                                f"conversation ({', '.join(kinds)}); take it out")
        approved = await self.suggestions.approve(suggestion_id, approval)
        log.info("suggestions.approved", suggestion_id=str(suggestion_id),
                 article_id=approved.article_id, created=approved.created)
        return approved

    async def dismiss(self, who: Principal, suggestion_id: uuid.UUID) -> SuggestionView:
        return await self.suggestions.dismiss(suggestion_id, editor=who.email)

    async def mark(self, who: Principal, conversation_id: uuid.UUID, message_id: uuid.UUID
                   ) -> SuggestionView:
        """An agent's reply in the inbox, "add to the knowledge base"."""
        suggestion_id = await self.harvester.mark_reply(who, conversation_id, message_id)
        return await self.suggestions.get(suggestion_id)

    async def _harvest(self) -> None:
        try:
            await self.harvester.harvest()
        except KnowledgeError as exc:  # the embedding model is down: list what there is
            log.warning("suggestions.harvest_failed", error=str(exc))
