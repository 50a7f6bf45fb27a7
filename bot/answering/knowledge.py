"""The knowledge responder: route the intent, answer only from the knowledge base.

Order of decisions (customer text never changes it):
1. rules (opt-out, complaint, human request, greeting, thanks), then requests
   that only a person can fulfil (appeal a claim, issue a policy today, look up
   the customer's own records): escalate with the reason;
2. the embedding classifier (then the LLM when unsure) for everything else;
3. questions and product/price messages: hybrid retrieval; weak support means
   "I don't know" plus a handoff (reason ``no_answer``); prices and stock come
   exactly from the catalog; otherwise the LLM writes a grounded answer if one is
   configured, else a short extract of the best passage. ``sources`` lists what
   the reply used, most relevant first.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from decimal import Decimal

from bot.answering.generation import AnswerGenerator, GenerationRequest, Passage, PersonaText
from bot.answering.intents import IntentRouter
from bot.answering.responder import Decision, Persona, ResponseRequest
from bot.answering.rules import Intent, needs_person
from bot.i18n import detect_language, t
from bot.logs import get_logger
from knowledge.config import KnowledgeConfig
from knowledge.embeddings import Vector
from knowledge.retrieval import Hit, Retrieval, Retriever
from knowledge.store import KnowledgeStore, ProductView
from knowledge.text import fold

log = get_logger("atiende.answering")

GENERATION_DEADLINE_SECONDS = 8.0
_PRICE_WORDS = re.compile(
    r"\b(precio|precios|cuesta|cuestan|costo|costos|cuanto sale|cuanto salen|me sale|cobran|"
    r"tarifa|price|prices|cost|costs|how much|stock|disponibles?|existencias|quedan|"
    r"available|in stock)\b"
)
# "¿cuánto me cobran de deducible?" asks an amount the articles explain (deductible,
# coinsurance, surcharge, refund…), not a catalog price: the price words then belong
# to that concept and the answer comes from the article.
_POLICY_AMOUNT = re.compile(
    r"\b(deducibles?|coaseguros?|recargos?|suma asegurada|devolucion|reembolsos?|"
    r"penalizacion|penalidad|comision|comisiones|tope|indemnizacion|intereses|multa|"
    r"deductibles?|coinsurance|surcharges?|refunds?|reimbursement|penalty|fees?)\b"
)
# Asking whether the business offers something ("¿aseguran bicis?"): when the message
# names a thing the knowledge base never mentions, the honest answer is a handoff.
_AVAILABILITY = re.compile(
    r"\b(venden|vendes|ofrecen|manejan|tienen|hay|aseguran|asegurar|aseguras|"
    r"do you (sell|have|offer|insure))\b"
)
_QUESTION_HINT = re.compile(
    r"\?|\b(que|como|cuando|donde|cual|cuales|cuanto|quien|por que|puedo|pueden|tienen|hay|"
    r"dame|dime|quiero|necesito|busco|venden|what|how|when|where|which|can|do you|is there|"
    r"give me|tell me)\b"
)
_UNIT_SPLIT = re.compile(r"\n+|(?<=[.!?])\s+(?=[A-ZÁÉÍÓÚÑ¿¡*])")


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    sources: tuple[str, ...]


class KnowledgeResponder:
    """Answers from the knowledge base, or says it does not know and hands over."""

    def __init__(
        self,
        *,
        persona: Persona,
        router: IntentRouter,
        retriever: Retriever,
        store: KnowledgeStore,
        config: KnowledgeConfig,
        generator: AnswerGenerator | None = None,
    ) -> None:
        self._persona = persona
        self._router = router
        self._retriever = retriever
        self._store = store
        self._config = config
        self._generator = generator

    async def respond(self, request: ResponseRequest) -> Decision:
        text = request.text.strip()
        language = detect_language(text, self._persona.language)
        routed_text = await self._router.route(text) if text else None
        if routed_text is None:
            return Decision(Intent.OTHER, 0.0, (t("small_talk", language),), language=language)
        routed = routed_text.routed
        intent, confidence = routed.intent, routed.confidence
        if routed.stage != "rules" and intent in (Intent.GREETING, Intent.THANKS) \
                and _QUESTION_HINT.search(fold(text)):
            intent = Intent.QUESTION  # "¿dónde están?" is not a greeting, whatever it resembles
        fixed = self._fixed_reply(request, intent, confidence, language)
        if fixed is not None:
            return fixed
        reason = needs_person(text)
        if reason is not None:
            return Decision(intent, confidence, (t("needs_person", language),), escalate=True,
                            reason=reason, language=language)
        vector = routed_text.vector
        if vector is None:
            vector = (await self._store.embedder.embed([text]))[0]
        if intent in (Intent.GREETING, Intent.THANKS):  # only rules are trusted for these
            intent = Intent.QUESTION
        # searched with the question as the knowledge base words it (synonyms); the raw
        # question's vector still picks the sentence to quote
        search_vector = await self._retriever.query_vector(text, vector)
        retrieval = await self._retriever.search_vector(
            text, search_vector, limit=self._config.top_k, unknown=True
        )
        answer = None
        wants_price = _asks_price(fold(text))
        if wants_price:
            answer = await self._catalog_answer(text, search_vector, language, retrieval)
        asks_availability = bool(_AVAILABILITY.search(fold(text)))
        if answer is None and (wants_price or asks_availability) and retrieval.unknown_terms:
            # A price for something the catalog does not hold ("seguro para motos").
            return self._unsupported(text, intent, confidence, language, retrieval)
        if answer is None:
            if not self._supported(retrieval):
                return self._unsupported(text, intent, confidence, language, retrieval)
            answer = await self._answer(request, text, vector, language, retrieval)
        if answer is None:
            return self._unsupported(text, intent, confidence, language, retrieval)
        skus = {h.source_id for h in retrieval.hits if h.source_kind == "product"}
        answered_product = answer.sources[0] in skus or answer.sources[0].isupper()
        intent = Intent.PRODUCT if answered_product else Intent.QUESTION
        return Decision(intent, confidence, (answer.text,), sources=answer.sources,
                        language=language)

    # -- decisions that need no knowledge ---------------------------------------------

    def _fixed_reply(
        self, request: ResponseRequest, intent: Intent, confidence: float, language: str
    ) -> Decision | None:
        names = {"bot": self._persona.bot_name, "business": self._persona.business_name}
        if intent is Intent.GREETING:
            first = (request.contact_name or "").split(" ")[0]
            greeting = t("greeting", language, name=f" {first}" if first else "", **names)
            return Decision(intent, confidence, (greeting,), language=language)
        if intent is Intent.THANKS:
            return Decision(intent, confidence, (t("thanks", language),), language=language)
        if intent is Intent.OPT_OUT:
            return Decision(intent, confidence, (t("opt_out", language),), opt_out=True,
                            language=language)
        if intent is Intent.HUMAN:
            return Decision(intent, confidence, (t("handoff", language),), escalate=True,
                            reason="customer_request", language=language)
        if intent is Intent.COMPLAINT:
            return Decision(intent, confidence, (t("complaint", language),), escalate=True,
                            reason="complaint", language=language)
        return None

    def _unsupported(
        self, text: str, intent: Intent, confidence: float, language: str, retrieval: Retrieval
    ) -> Decision:
        folded = fold(text)
        if intent is Intent.OTHER and not _QUESTION_HINT.search(folded) and len(folded) < 40:
            # "ok", "jaja", an emoji: nothing to answer and nothing to escalate.
            return Decision(intent, confidence, (t("small_talk", language),), language=language)
        best = retrieval.hits[0].similarity if retrieval.hits else 0.0
        log.info("answer.no_support", intent=str(intent), best_similarity=round(best, 3))
        reply = t("no_answer", language, business=self._persona.business_name)
        return Decision(intent, confidence, (reply,), escalate=True, reason="no_answer",
                        language=language)

    def _supported(self, retrieval: Retrieval) -> bool:
        for hit in retrieval.hits[:3]:
            if hit.similarity >= self._config.min_similarity:
                return True
            if hit.text_rank > 0 and hit.similarity >= self._config.min_similarity_with_text:
                return True
        return False

    # -- answering ---------------------------------------------------------------------

    async def _catalog_answer(
        self, text: str, vector: Vector, language: str, retrieval: Retrieval
    ) -> Answer | None:
        """Price/stock questions: exact catalog facts for the product the message names,
        or the products of the family the best article is about ("seguro de auto")."""
        products = await self._retriever.search_vector(
            text, vector, limit=self._config.top_k, kind="product"
        )
        hits = [h for h in products.hits if h.source_kind == "product"]
        if not hits:
            return None
        views = await self._store.products_by_sku([h.source_id for h in hits])
        ranked = [views[h.source_id] for h in hits if h.source_id in views]
        if ranked and _named_product(text, ranked) is not None:
            return await self._product_answer(text, hits, language)
        if retrieval.unknown_terms or not self._supported(retrieval):
            return None
        top = next((h for h in retrieval.hits if h.source_kind == "article"), None)
        if top is None:
            return None
        family = fold(top.title)
        members = [
            p for p in await self._store.list_products(limit=500)
            if p.category and fold(p.category) in family
        ]
        if not members:
            return None
        return self._price_list(members[:6], language)

    async def _answer(
        self, request: ResponseRequest, text: str, vector: Vector, language: str,
        retrieval: Retrieval,
    ) -> Answer | None:
        top = retrieval.hits[0]
        product_hits = [h for h in retrieval.hits if h.source_kind == "product"]
        if top.source_kind == "product":
            article = next((h for h in retrieval.hits if h.source_kind == "article"), None)
            if article is not None and not await self._about_product(text, product_hits):
                # "¿cubren los sismos en mi casa?" asks what an article explains; a
                # product card answers price, stock, or a product the message names.
                top = article
            else:
                answer = await self._product_answer(text, product_hits, language)
                if answer is not None:
                    return answer
        if self._generator is not None:
            generated = await self._generate(request, language, retrieval)
            if generated is not None:
                return generated
        return await self._extract(vector, text, language, top)

    async def _about_product(self, text: str, hits: list[Hit]) -> bool:
        """The message asks a price, stock or availability, or names one product."""
        folded = fold(text)
        if _asks_price(folded) or _AVAILABILITY.search(folded):
            return True
        products = await self._store.products_by_sku([h.source_id for h in hits])
        ranked = [products[h.source_id] for h in hits if h.source_id in products]
        named = _named_product(text, ranked) if ranked else None
        return named is not None and bool(
            _stems(text) & (_stems(named.name) | {named.sku.lower()})
        )

    async def _product_answer(
        self, text: str, hits: list[Hit], language: str
    ) -> Answer | None:
        """Price and stock exactly as the catalog says (one product, or a short list)."""
        products = await self._store.products_by_sku([h.source_id for h in hits])
        ranked = [products[h.source_id] for h in hits if h.source_id in products]
        if not ranked:
            return None
        first = _named_product(text, ranked)
        chosen = [first] if first is not None else [
            p for p in ranked if p.category == ranked[0].category
        ][:4]
        first = chosen[0]
        if len(chosen) > 1:
            return self._price_list(chosen, language)
        if len(chosen) == 1:
            lines = [_price_line(first, language)]
            if first.description:
                lines.append(_first_sentences(first.description, 220))
            if first.stock is not None:
                lines.append(t("stock_some", language, stock=str(first.stock)) if first.stock
                             else t("stock_none", language))
        else:
            chosen.sort(key=lambda p: p.price)
            lines = [t("price_list_intro", language)]
            lines += [f"• {_price_line(p, language)}" for p in chosen]
        if any(p.stock is None for p in chosen):
            lines.append(t("price_note", language))
        return Answer("\n".join(lines), tuple(p.sku for p in chosen))

    @staticmethod
    def _price_list(products: list[ProductView], language: str) -> Answer:
        chosen = sorted(products, key=lambda p: p.price)
        lines = [t("price_list_intro", language)]
        lines += [f"• {_price_line(p, language)}" for p in chosen]
        if any(p.stock is None for p in chosen):
            lines.append(t("price_note", language))
        return Answer("\n".join(lines), tuple(p.sku for p in chosen))

    async def _generate(
        self, request: ResponseRequest, language: str, retrieval: Retrieval
    ) -> Answer | None:
        assert self._generator is not None
        passages = tuple(
            Passage(h.source_id, h.title, f"{h.heading}\n{h.text}".strip(), h.score)
            for h in retrieval.hits
        )
        deadline = asyncio.get_running_loop().time() + GENERATION_DEADLINE_SECONDS
        generated = await self._generator.generate(
            GenerationRequest(
                question=request.text, passages=passages, history=tuple(request.history),
                language=language,
                persona=PersonaText(self._persona.bot_name, self._persona.business_name),
                deadline=deadline,
            )
        )
        if generated is None or not generated.text.strip():
            return None
        known = retrieval.sources()
        sources = tuple(s for s in generated.sources if s in known) or known[:1]
        return Answer(generated.text.strip(), sources)

    async def _extract(self, vector: Vector, text: str, language: str, hit: Hit) -> Answer:
        """The part of the best source that answers the question, trimmed."""
        passages = await self._store.passages(hit.source_kind, hit.source_id)
        if not passages:
            passages = [(hit.heading, hit.text)]
        units: list[tuple[int, str, str]] = []  # (passage index, heading, unit)
        for index, (heading, passage) in enumerate(passages):
            for unit in _UNIT_SPLIT.split(passage):
                if unit.strip():
                    units.append((index, heading, unit.strip()))
        inputs = [f"{h}. {u}" if h else u for _, h, u in units]
        vectors = await self._store.embedder.embed(inputs)
        words = _stems(text)
        scores = [
            _dot(vector, v) + 0.25 * _overlap(words, _stems(f"{h} {u}"))
            for (_, h, u), v in zip(units, vectors, strict=True)
        ]
        best = max(range(len(units)), key=lambda i: scores[i])
        picked = _with_lead_in(units, best)
        limit = self._config.answer_max_chars
        # A lead-in ("Puedes pagar con:") needs the list after it; a short unit reads
        # better with its neighbour from the same passage.
        follow = best + 1
        lead_in = picked[-1].rstrip().endswith(":")
        while follow < len(units) and units[follow][0] == units[best][0]:
            following = units[follow][2]
            is_item = _is_item(following)
            if not (lead_in and is_item) and len(" ".join(picked)) >= 90:
                break
            if len("\n".join(picked)) + len(following) > limit:
                break
            picked.append(following)
            follow += 1
        body = _trim("\n".join(picked), limit)
        parts = []
        intro = t("english_intro", language)
        if intro:
            parts.append(intro)
        parts.append(body)
        parts.append(t("source_line", language, titles=hit.title))
        return Answer("\n\n".join(parts), (hit.source_id,))


def _asks_price(folded: str) -> bool:
    """A catalog price or stock question (not the amount of a deductible, a refund…)."""
    return bool(_PRICE_WORDS.search(folded)) and not _POLICY_AMOUNT.search(folded)


def _with_lead_in(units: list[tuple[int, str, str]], best: int) -> list[str]:
    """A list item reads better after its lead-in ("Puedes pagar con:")."""
    picked = [units[best][2]]
    if _is_item(picked[0]):
        for back in range(best - 1, -1, -1):
            if units[back][0] != units[best][0]:
                break
            if units[back][2].rstrip().endswith(":"):
                picked.insert(0, units[back][2])
                break
    return picked


def _is_item(unit: str) -> bool:
    return bool(re.match(r"([-•*]|\d+\.)\s", unit.lstrip()))


def _price_line(product: ProductView, language: str) -> str:
    return t("price_one", language, name=product.name,
             price=format_price(product.price, product.currency), unit="")


def format_price(price: Decimal, currency: str) -> str:
    return f"${price:,.2f} {currency}"


def _named_product(text: str, ranked: list[ProductView]) -> ProductView | None:
    """The product the message names: most name words matched, then best coverage.

    ``None`` when the best match is not distinctive (the message names a family,
    e.g. "seguro de auto", and several products fit equally).
    """
    words = _stems(text)
    scored = []
    for position, product in enumerate(ranked):
        name = _stems(product.name) | {product.sku.lower()}
        matched = len(words & name)
        scored.append((matched, matched / len(name) if name else 0.0, -position, product))
    scored.sort(key=lambda s: (s[0], s[1], s[2]), reverse=True)
    best = scored[0]
    if best[0] == 0:
        return ranked[0] if len(ranked) == 1 else None
    rivals = [s for s in scored[1:] if s[0] == best[0] and abs(s[1] - best[1]) < 1e-9]
    return None if rivals else best[3]


_STOP = frozenset(
    "de la el los las del al y o a en con por para que se su sus tu tus mi mis un una es son "
    "como cual cuanto cuesta me te lo le les hay the of to is a an and or for my your do does "
    "seguro seguros precio precios cuanto sale".split()
)


def _stems(text: str) -> set[str]:
    return {
        w[:5] for w in re.findall(r"\w+", fold(text))
        if w not in _STOP and (len(w) > 2 or w.isdigit())
    }


def _overlap(question: set[str], unit: set[str]) -> float:
    return len(question & unit) / len(question) if question else 0.0


def _dot(a: Vector, b: Vector) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _first_sentences(text: str, limit: int) -> str:
    return _trim(text, limit)


def _trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    for mark in ("\n", ". ", "; "):
        at = cut.rfind(mark)
        if at > limit // 2:
            return cut[: at + (1 if mark != "\n" else 0)].rstrip()
    return cut.rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
