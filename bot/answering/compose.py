"""The reply text of an answer: the passages that answer, or the catalog's own lines.

An article's answer is its best passages (a paragraph, a list item after its lead-in, a
table row), as many of the best as fit a WhatsApp reply together, and the beginning of
the next best when there is room for it, in the article's order under their headings.
A catalog answer states price and stock exactly as the catalog has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from bot.i18n import t
from knowledge.answer_types import Wants, states, wanted
from knowledge.indexing import unit_heading
from knowledge.kinds import ProductView
from knowledge.ranking import Candidate, RankedSource

# Passages join the best one while they fit the reply and score within ``CLOSE`` of it
# (fused z-score): the fact asked for is often in the second to fifth best passage (on
# the evaluation sets: 3 and 2.5 held the fact in 200 replies, 5 and 5.0 in 211, and
# with ``STATES_WANTED`` in 215 of 295).
MAX_PASSAGES = 5
CLOSE = 5.0
# A passage that states the kind of fact the question asks for (an amount, a duration, a
# time of day: ``answer_types``) counts this much more when the passages are chosen.
STATES_WANTED = 3.0
# The next best passage that no longer fits whole still shows its beginning, trimmed at a
# line or sentence where it can be, when at least this many characters are left: the fact
# asked for is often early in it (on the twenty evaluation sets, replayed: the fact in 604
# replies of 680 answered from the right article, against 591 when it is left out and
# smaller, weaker passages fill the room; 602 with 120 characters, 598 with 200).
TRIMMED_ROOM = 80


def format_price(price: Decimal, currency: str) -> str:
    return f"${price:,.2f} {currency}"


def price_line(product: ProductView, language: str) -> str:
    return t("price_one", language, name=product.name,
             price=format_price(product.price, product.currency), unit="")


def passage_reply(source: RankedSource, language: str, *, limit: int, question: str = "",
                  article: Sequence[tuple[str, str]] = ()) -> str:
    """The passages of an article that answer: the best ones for ``question`` that fit
    ``limit`` characters together (at most ``MAX_PASSAGES``), in the article's order, each
    group under its heading, with the source line. With the ``article``'s passages
    ((heading, text) in order), a list is never shown with a hole: the items before a
    chosen one come with it ("Tienes dos opciones:" is followed by both)."""
    picked, cut = _pack(source, limit, wanted(question))
    chosen = [(p.heading, p.text) for p in sorted(picked, key=lambda p: p.chunk_id)]
    if article:
        whole = [p for p in picked if cut is None or p.chunk_id != cut.chunk_id]
        filled = whole_lists(whole, article, limit)
        if filled is not None:
            chosen = _with_cut(filled, cut, article, limit)
    parts = []
    intro = t("english_intro", language)
    if intro:
        parts.append(intro)
    sections: list[tuple[str, list[str]]] = []
    title = source.passages[0].title
    for passage_heading, text in chosen:  # the article's own order
        heading = unit_heading(title, passage_heading)
        if sections and sections[-1][0] == heading:
            sections[-1][1].append(text)
        else:
            sections.append((heading, [text]))
    parts.append("\n".join(
        f"*{heading}*\n" + "\n".join(_dedupe_leads(texts)) for heading, texts in sections))
    parts.append(t("source_line", language, titles=source.passages[0].title))
    return "\n\n".join(parts)


def _pack(source: RankedSource, limit: int, wants: frozenset[Wants] = frozenset()
          ) -> tuple[list[Candidate], Candidate | None]:
    """The best passages, best first, while they fit together (a long first one is
    trimmed alone); one that states the kind of fact asked for counts more. The first
    that does not fit is trimmed into what is left when that is ``TRIMMED_ROOM`` or more,
    and ends the reply; that passage as it was is returned too (``None``: none was cut)."""
    scored = sorted(
        ((score + (STATES_WANTED if states(wants, passage.text) else 0.0), index)
         for index, (passage, score) in enumerate(zip(source.passages, source.fused,
                                                      strict=True))),
        key=lambda item: (-item[0], item[1]))
    lead_score, lead = scored[0]
    first = source.passages[lead]
    if len(first.text) >= limit:
        return [replace(first, text=trim(first.text, limit))], first
    picked = [first]
    size = len(first.text)
    for score, index in scored[1:]:
        if len(picked) >= MAX_PASSAGES or lead_score - score > CLOSE:
            break
        passage = source.passages[index]
        if size + len(passage.text) + 1 <= limit:
            picked.append(passage)
            size += len(passage.text) + 1
        elif limit - size - 1 >= TRIMMED_ROOM and list_lead(passage.text) is None:
            picked.append(replace(passage, text=trim(passage.text, limit - size - 1)))
            return picked, passage
    return picked, None


def _with_cut(filled: list[tuple[str, str]], cut: Candidate | None,
              article: Sequence[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    """A list filled whole (``whole_lists``) keeps the passage that was cut to fit, cut
    again to the room left, in the article's order; without room it gives way."""
    if cut is None:
        return filled
    order = {passage: index for index, passage in enumerate(article)}
    at = order.get((cut.heading, cut.text))
    room = limit - _size(article, {order[p] for p in filled}) - 1
    if at is None or article[at] in filled or room < TRIMMED_ROOM:
        return filled
    placed = [(order[p], p) for p in filled] + [(at, (cut.heading, trim(cut.text, room)))]
    return [p for _, p in sorted(placed)]


def list_lead(text: str) -> str | None:
    """A list item's lead-in line ("Puedes pagar con:"), ``None`` for any other passage."""
    head, sep, _ = text.partition("\n")
    return head if sep and head.rstrip().endswith(":") else None


def whole_lists(picked: Sequence[Candidate], article: Sequence[tuple[str, str]], limit: int
                ) -> list[tuple[str, str]] | None:
    """The picked passages, in the article's order, with the items a chosen list item's
    list has before it; to make room, the weakest passages outside those lists give way
    (the best one never does). ``None`` when nothing needs filling or it cannot fit."""
    where = {passage: index for index, passage in enumerate(article)}
    positions = [where.get((p.heading, p.text)) for p in picked]
    if any(index is None for index in positions):
        return None  # the article changed since it was searched
    chosen = [index for index in positions if index is not None]
    filled: set[int] = set()
    for index in chosen:
        lead = list_lead(article[index][1])
        if lead is None:
            continue
        start = index
        while (start > 0 and article[start - 1][0] == article[index][0]
               and list_lead(article[start - 1][1]) == lead):
            start -= 1
        filled.update(range(start, index))
    missing = filled - set(chosen)
    if not missing:
        return None
    keep = set(chosen) | missing
    # the weakest first: picked is best first
    for index in reversed(chosen[1:]):
        if _size(article, keep) <= limit:
            break
        if index not in filled and list_lead(article[index][1]) is None:
            keep.discard(index)
    if _size(article, keep) > limit:
        return None
    return [article[index] for index in sorted(keep)]


def _size(article: Sequence[tuple[str, str]], keep: set[int]) -> int:
    """Characters of the passages as the reply shows them (a list's lead-in once)."""
    texts = [article[index][1] for index in sorted(keep)]
    return len("\n".join(_dedupe_leads(texts)))


def _dedupe_leads(texts: list[str]) -> list[str]:
    """List items share their lead-in line ("Puedes pagar con:"): say it once."""
    out: list[str] = []
    lead = None
    for text in texts:
        head, sep, rest = text.partition("\n")
        if sep and head.rstrip().endswith(":"):
            if head != lead:
                out.append(head)
                lead = head
            out.append(f"• {rest}")
        else:
            out.append(text)
            lead = None
    return out


def catalog_reply(products: Sequence[ProductView], language: str) -> str:
    """Price and stock exactly as the catalog says (one product, or a short list)."""
    if len(products) == 1:
        product = products[0]
        lines = [price_line(product, language)]
        if product.description:
            lines.append(trim(product.description, 220))
        if product.stock is not None:
            lines.append(t("stock_some", language, stock=str(product.stock)) if product.stock
                         else t("stock_none", language))
        return "\n".join(lines)
    lines = [t("price_list_intro", language)]
    for product in sorted(products, key=lambda p: p.price):
        line = f"• {price_line(product, language)}"
        if product.stock is not None:
            stock = (t("stock_some", language, stock=str(product.stock)) if product.stock
                     else t("stock_none", language))
            line = f"{line} {stock}"
        lines.append(line)
    return "\n".join(lines)


def trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    for mark in ("\n", ". ", "; "):
        at = cut.rfind(mark)
        if at > limit // 2:
            return cut[: at + (1 if mark != "\n" else 0)].rstrip()
    return cut.rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
