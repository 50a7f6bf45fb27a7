"""Ports for what an LLM chain does for the bot (implemented in ``bot/llm``).

The responder works without any of them (extractive answers, rules and the
embedding classifier); each returns ``None`` when no provider could help within
the deadline, and the caller falls back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.messages import Turn


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved piece of the knowledge base (article chunk or catalog product)."""

    source_id: str  # article id or product sku
    title: str
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class PersonaText:
    """The tone the admin sets: bot name, greeting, business information."""

    bot_name: str
    business_name: str
    business_info: str = ""
    tone: str = ""


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    question: str
    passages: tuple[Passage, ...]
    history: tuple[Turn, ...]
    language: str
    persona: PersonaText
    deadline: float  # event-loop time (loop.time()) by which an answer is useless


@dataclass(frozen=True, slots=True)
class GeneratedAnswer:
    text: str
    sources: tuple[str, ...]
    model: str


class AnswerGenerator(Protocol):
    """Writes a reply grounded only in the given passages, or returns None."""

    async def generate(self, request: GenerationRequest) -> GeneratedAnswer | None: ...


class IntentClassifier(Protocol):
    """Classifies a message into one of ``labels`` when cheaper stages are unsure."""

    async def classify(
        self, text: str, labels: tuple[str, ...], *, deadline: float
    ) -> tuple[str, float] | None: ...


class Summarizer(Protocol):
    """A short summary of the conversation for the agent who takes it over."""

    async def summarize(
        self, turns: tuple[Turn, ...], *, language: str, deadline: float
    ) -> str | None: ...


@dataclass(frozen=True, slots=True)
class DraftRequest:
    """Grouped customer questions and the replies agents gave them (masked text)."""

    questions: tuple[str, ...]
    replies: tuple[str, ...]
    language: str
    persona: PersonaText
    deadline: float  # event-loop time


@dataclass(frozen=True, slots=True)
class DraftedArticle:
    title: str
    body: str
    model: str


class ArticleDrafter(Protocol):
    """Drafts a knowledge-base article grounded only in the agents' replies, or None."""

    @property
    def ready(self) -> bool:
        """Whether a model is configured to draft with (else nothing is attempted)."""
        ...

    async def draft(self, request: DraftRequest) -> DraftedArticle | None: ...
