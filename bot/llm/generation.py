"""The generation ports (``bot.answering.generation``) implemented on the chain, with our checks."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from bot.answering import grounding
from bot.answering.generation import GeneratedAnswer, GenerationRequest, PersonaText
from bot.clock import Clock
from bot.llm.chain import LLMChain
from bot.messages import Turn

ProductNames = Callable[[], Collection[str]]


def _no_products() -> Collection[str]:
    return ()


class ChainAnswerGenerator:
    """Writes a reply grounded in the passages, or None (the caller answers extractively).

    The draft is checked before it is returned: numbers, prices, amounts, product
    names and promises must be in the passages (or the business information), cited
    ids must be among the passages, and nothing of our instructions or configuration
    may appear in it.
    """

    def __init__(
        self, chain: LLMChain, *, clock: Clock, memory_window: timedelta = timedelta(hours=24),
        known_products: ProductNames = _no_products,
    ) -> None:
        self._chain = chain
        self._clock = clock
        self._window = memory_window
        self.known_products = known_products
        self.canary = "ATD-" + secrets.token_hex(6)

    async def generate(self, request: GenerationRequest) -> GeneratedAnswer | None:
        config = self._chain.config
        if not request.passages or config is None:
            return None  # nothing to ground an answer in: the caller decides
        history = grounding.trim_history(
            request.history, budget_tokens=config.atiende.memory_tokens, now=self._now(),
            window=self._window,
        )
        messages = grounding.answer_messages(
            question=request.question, passages=request.passages, history=history,
            persona=request.persona, language=request.language, canary=self.canary,
        )
        rules = grounding.system_rules(
            dataclasses.replace(request.persona, business_info=""), language=request.language,
            canary=self.canary, example_id="id",
        )
        context = request.question + "\n" + "\n".join(t.text for t in history)
        verdicts: list[grounding.Verdict] = []

        def check(completion: object) -> str | None:
            verdict = grounding.check_answer(
                getattr(completion, "text", ""), passages=request.passages,
                persona=request.persona, context=context, rules_text=rules,
                canary=self.canary, secrets=self._chain.secrets(),
                known_products=self.known_products(),
            )
            verdicts.append(verdict)
            return verdict.reason

        completion = await self._chain.call(
            "answer", messages, deadline=request.deadline, check=check
        )
        if completion is None or not verdicts or not verdicts[0].ok:
            return None
        return GeneratedAnswer(
            text=verdicts[0].text, sources=verdicts[0].sources, model=completion.model
        )

    def _now(self) -> datetime:
        return self._clock()


class ChainIntentClassifier:
    """Asks the chain for one of ``labels`` (JSON); None when unsure or out of time."""

    def __init__(self, chain: LLMChain) -> None:
        self._chain = chain

    async def classify(
        self, text: str, labels: tuple[str, ...], *, deadline: float
    ) -> tuple[str, float] | None:
        if not labels or self._chain.config is None:
            return None
        parsed: list[tuple[str, float] | None] = []

        def check(completion: object) -> str | None:
            parsed.append(grounding.parse_intent(getattr(completion, "text", ""), labels))
            return None if parsed[0] else "not_a_label"

        completion = await self._chain.call(
            "intent", grounding.intent_messages(text, labels), deadline=deadline,
            max_tokens=40, json_mode=True, check=check,
        )
        return parsed[0] if completion is not None and parsed else None


class ChainSummarizer:
    """A short handoff note for the agent; None when the chain cannot write one in time."""

    def __init__(self, chain: LLMChain, *, max_chars: int = 700) -> None:
        self._chain = chain
        self._max_chars = max_chars
        self.canary = "ATD-" + secrets.token_hex(6)

    async def summarize(
        self, turns: tuple[Turn, ...], *, language: str, deadline: float
    ) -> str | None:
        if not turns or self._chain.config is None:
            return None
        messages = grounding.summary_messages(turns, language=language, canary=self.canary)
        rules = messages[0]["content"]

        def check(completion: object) -> str | None:
            leak = grounding.leaked(
                getattr(completion, "text", ""), rules_text=rules, canary=self.canary,
                secrets=self._chain.secrets(),
            )
            return "leak" if leak else None

        completion = await self._chain.call(
            "summary", messages, deadline=deadline, max_tokens=200, check=check
        )
        if completion is None:
            return None
        text = completion.text.strip()
        return text if len(text) <= self._max_chars else text[: self._max_chars - 1] + "…"


def persona_from(bot_name: str, business_name: str, info: str = "", tone: str = "") -> PersonaText:
    return PersonaText(bot_name=bot_name, business_name=business_name, business_info=info,
                       tone=tone)
