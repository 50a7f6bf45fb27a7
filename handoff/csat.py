"""The satisfaction question (asked when an agent resolves): is this message its answer,
store the score, thank the customer; the question closes unanswered when they move on."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.config import HandoffConfig
from handoff.ports import Clock
from handoff.tables import Ticket
from handoff.texts import text as say

_CSAT = re.compile(r"^\s*([1-5])\s*(?:/\s*5)?\s*[.!⭐️👍🙂😊]*\s*$")


def close_csat_sql(conversation_ids_sql: str) -> str:
    """For a caller's own statement (the worker's one-statement commit): the customers of
    the conversations ``conversation_ids_sql`` selects wrote again, so their open
    satisfaction questions are closed unanswered."""
    return (
        "UPDATE handoff_tickets SET csat_open = false "
        f"WHERE conversation_id IN ({conversation_ids_sql}) AND csat_open"
    )


class CsatAnswers:
    """Recognises and stores the answer to an open satisfaction question."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, config: HandoffConfig, clock: Clock
    ) -> None:
        self._sessions = sessions
        self._config = config
        self._clock = clock

    async def expected(
        self, conversation_id: uuid.UUID, body: str | None
    ) -> tuple[int, str] | None:
        """(score, language) when ``body`` answers an open CSAT question of the conversation."""
        match = _CSAT.match(body or "")
        if match is None:
            return None
        async with self._sessions() as session:
            language = (
                await session.execute(
                    select(Ticket.language).where(
                        Ticket.conversation_id == conversation_id,
                        Ticket.csat_open,
                        Ticket.csat_asked_at
                        > self._clock() - timedelta(hours=self._config.csat_window_hours),
                    )
                )
            ).scalars().first()
        return (int(match.group(1)), language) if language else None

    async def answered_in(
        self, session: AsyncSession, conversation_id: uuid.UUID, score: int | None
    ) -> bool:
        """Close the CSAT window (the customer's next message after the question); store
        ``score`` when given. False when there was no open question to answer."""
        ticket = (
            await session.execute(
                select(Ticket).where(Ticket.conversation_id == conversation_id, Ticket.csat_open)
                .with_for_update()
            )
        ).scalars().first()
        if ticket is None:
            return False
        ticket.csat_open = False
        if score is not None:
            ticket.csat_score = score
            ticket.csat_answered_at = self._clock()
        return True

    @staticmethod
    def thanks(language: str) -> str:
        return say("csat_thanks", language)
