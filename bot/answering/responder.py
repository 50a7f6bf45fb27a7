"""The responder port and the first responder (rules + an honest holding reply)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from bot.answering.rules import Intent, route_rules
from bot.i18n import detect_language, t
from bot.messages import Turn


@dataclass(frozen=True, slots=True)
class ResponseRequest:
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    text: str
    history: list[Turn] = field(default_factory=list)
    contact_name: str | None = None
    # seconds the message waited for a worker before this decision: under a backlog the
    # responder may decide faster (KnowledgeConfig.second_model_max_wait)
    waited: float = 0.0


@dataclass(frozen=True, slots=True)
class Decision:
    """What the bot does with one customer message."""

    intent: str
    confidence: float
    replies: tuple[str, ...] = ()
    escalate: bool = False
    reason: str | None = None
    sources: tuple[str, ...] = ()
    opt_out: bool = False
    language: str = "es"
    csat_score: int | None = None  # the message answered the satisfaction question
    while_queued: bool = False  # an answer from the knowledge base while a person is coming


class Responder(Protocol):
    """Decides the bot's reply to a customer message (only for bot-owned conversations)."""

    async def respond(self, request: ResponseRequest) -> Decision: ...


@runtime_checkable
class Warms(Protocol):
    """A responder whose models load on first use, able to load them ahead: a worker
    warms it at start, so its first customer does not wait for the loading."""

    async def warm(self) -> None: ...


@dataclass(frozen=True)
class Persona:
    bot_name: str
    business_name: str
    language: str = "es"


class RuleResponder:
    """Greetings, thanks, opt-out and explicit human requests; a holding reply otherwise."""

    def __init__(self, persona: Persona) -> None:
        self._persona = persona

    async def respond(self, request: ResponseRequest) -> Decision:
        language = detect_language(request.text, self._persona.language)
        routed = route_rules(request.text)
        intent = routed.intent if routed else Intent.OTHER
        confidence = routed.confidence if routed else 0.0
        names = {"bot": self._persona.bot_name, "business": self._persona.business_name}
        if intent is Intent.GREETING:
            first = (request.contact_name or "").split(" ")[0]
            text = t("greeting", language, name=f" {first}" if first else "", **names)
            return Decision(intent, confidence, (text,), language=language)
        if intent is Intent.THANKS:
            return Decision(intent, confidence, (t("thanks", language),), language=language)
        if intent is Intent.OPT_OUT:
            return Decision(
                intent, confidence, (t("opt_out", language),), opt_out=True, language=language
            )
        if intent is Intent.HUMAN:
            return Decision(
                intent, confidence, (t("handoff", language),), escalate=True,
                reason="customer_request", language=language,
            )
        return Decision(intent, confidence, (t("holding", language),), language=language)
