"""Adapters from bot-side services to the handoff's ports."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.answering.generation import Summarizer
from bot.clock import Clock
from bot.messages import Turn

SUMMARY_DEADLINE_SECONDS = 4.0


class SummarizerPort:
    """``handoff.ports.ConversationSummarizer`` on top of the LLM chain's ``Summarizer``."""

    def __init__(self, summarizer: Summarizer, *, clock: Clock) -> None:
        self._summarizer = summarizer
        self._clock = clock

    async def summarize(self, turns: Sequence[tuple[str, str]], *, language: str) -> str | None:
        now = self._clock()
        deadline = asyncio.get_running_loop().time() + SUMMARY_DEADLINE_SECONDS
        return await self._summarizer.summarize(
            tuple(Turn(role, text, now) for role, text in turns), language=language,
            deadline=deadline,
        )
