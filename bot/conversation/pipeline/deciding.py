"""What the bot decides for one message: the responder's answer, a CSAT score, what to
say about a photo, document or voice note it cannot act on, and whether it asks to opt out."""

from __future__ import annotations

from dataclasses import replace

from bot.answering.responder import Decision, Responder, ResponseRequest
from bot.answering.rules import Intent, route_rules
from bot.conversation.pipeline.state import Pending, Snapshot
from bot.i18n import detect_language, t
from bot.infra.redis_adapter import ConversationMemory
from bot.messages import MessageKind, Turn
from bot.metrics import Metrics
from handoff.service import HandoffService

MEDIA_NEEDS_PERSON = "media_needs_person"


class Decider:
    """Decides the bot's answer to one message the bot may reply to."""

    def __init__(
        self,
        *,
        memory: ConversationMemory,
        responder: Responder,
        metrics: Metrics,
        handoff: HandoffService | None,
    ) -> None:
        self._memory = memory
        self._responder = responder
        self._metrics = metrics
        self._handoff = handoff

    async def csat_answer(self, pending: Pending) -> Decision | None:
        """The customer's next message after the CSAT question, when it is a 1-5 score."""
        if self._handoff is None:
            return None
        answer = await self._handoff.csat_expected(
            pending.conversation_id, pending.text or pending.transcript
        )
        if answer is None:
            return None
        score, language = answer
        return Decision(
            "csat", 1.0, (self._handoff.csat_thanks(language),), language=language,
            csat_score=score,
        )

    async def decide(self, pending: Pending, snapshot: Snapshot, fresh: bool) -> Decision:
        """The answer to ``pending``, in the light of the conversation since its context
        started (nothing when ``fresh``)."""
        history = (
            []
            if fresh
            else await self._memory.recent(
                pending.conversation_id, since=snapshot.context_started_at
            )
        )
        text = pending.text or pending.transcript
        if pending.kind in (MessageKind.IMAGE.value, MessageKind.DOCUMENT.value):
            return _media_decision(pending, history)
        if pending.kind == MessageKind.VOICE.value and not text:
            return _voice_problem_decision(pending, history)
        if not text or not text.strip():
            return Decision(Intent.OTHER.value, 0.0, (t("unsupported"),))
        with self._metrics.stage_seconds.labels("decide").time():
            return await self._responder.respond(
                ResponseRequest(
                    conversation_id=pending.conversation_id, message_id=pending.id, text=text,
                    history=history, contact_name=snapshot.contact_name,
                    waited=pending.waited(),
                )
            )


def queued_answer(decision: Decision) -> Decision | None:
    """While a person is coming, only an answer the knowledge base holds goes out, with a
    note that the person is still on the way; anything else waits for them."""
    if decision.escalate or decision.opt_out or not decision.sources:
        return None
    note = t("still_queued", decision.language)
    return replace(decision, replies=(*decision.replies, note), while_queued=True)


def asks_opt_out(pending: Pending) -> bool:
    routed = route_rules(pending.text or pending.transcript or "")
    return routed is not None and routed.intent is Intent.OPT_OUT


def _language(texts: list[str]) -> str:
    return detect_language(" ".join(texts), "es")


def _media_decision(pending: Pending, history: list[Turn]) -> Decision:
    """A photo or document: the bot cannot act on it, so acknowledge and queue for a person."""
    language = _language(
        [turn.text for turn in history if turn.role == "customer"] + [pending.text or ""]
    )
    if not (pending.media or {}).get("key"):
        # Refused (too big, not what it claimed, a decompression bomb) or never downloaded:
        # nothing to show a person, so ask the customer to send it again.
        return Decision(
            Intent.OTHER.value, 1.0, (t(f"media_refused_{pending.kind}", language),),
            language=language,
        )
    ack = t(f"media_received_{pending.kind}", language)
    return Decision(
        Intent.OTHER.value, 1.0, (f"{ack} {t('media_review', language)}",),
        escalate=True, reason=MEDIA_NEEDS_PERSON, language=language,
    )


def _voice_problem_decision(pending: Pending, history: list[Turn]) -> Decision:
    """A voice note we could not understand: say so plainly; a failing transcriber escalates."""
    language = _language([turn.text for turn in history if turn.role == "customer"])
    problem = pending.voice_problem or "corrupt"
    if problem == "failed":
        return Decision(
            Intent.OTHER.value, 0.0, (t("voice_failed", language),), escalate=True,
            reason="transcription_failed", language=language,
        )
    return Decision(
        Intent.OTHER.value, 0.0, (t(f"voice_{problem}", language),), language=language,
    )
