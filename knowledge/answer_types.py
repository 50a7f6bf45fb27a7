"""What kind of fact a question asks for, and whether a passage states one.

"¿Cuánto cuesta…?" / "how much" wants an amount; "¿en cuánto tiempo…?", "¿cuántos
días…?", "¿hasta cuándo…?" / "how long" a duration or a date; "¿a qué hora…?", "horario" /
"what time" a time of day. Within the article that answers, a passage that states that
kind of fact is likelier to hold the answer than a neighbour that only shares the
question's words ("el cambio de domicilio tiene un cargo de $500" against "tú desconectas
el módem…" for "¿cuánto sale cambiarme de casa?").

The form of the question also says whether the catalog or an article answers it
(``question_form``): "¿venden…?", "¿tienen…?", "¿quedan…?" ask whether something is sold
or in stock; "¿cómo…?", "¿puedo…?", "¿incluye…?", "si rento…" ask how something works,
which an article answers even when the question names a catalog product.

Only Spanish and English question words and units: nothing about any business.
"""

from __future__ import annotations

import re
from enum import Enum

from knowledge.text import fold, strip_accents


class Wants(Enum):
    AMOUNT = "amount"
    DURATION = "duration"
    CLOCK = "clock"


# Texting shorthand that hides question words: "q" and "k" for "que".
_SHORTHAND = ((re.compile(r"\bq\b"), "que"), (re.compile(r"\bk\b"), "que"))

_ASKS = {
    Wants.DURATION: re.compile(
        r"\b(cuanto tiempo|cuantos (dias|meses|anos|minutos)|cuantas (horas|semanas)|"
        r"en cuanto|hasta cuando|hasta que (dia|fecha)|que dia|cuando|desde que edad|"
        r"a que edad|cada cuando|tarda|tardan|tardo|demora|dura|duran|how long|"
        r"how many (days|hours|weeks|months|years)|how soon|when|until when)\b"),
    Wants.CLOCK: re.compile(
        r"\b(a que hora|que hora|hasta que hora|desde que hora|horario|horarios|"
        r"la tarde|la manana|la noche|what time|hours|opening|open|close)\b"),
    Wants.AMOUNT: re.compile(
        r"\b(cuanto|cuanta|que tanto|precio|precios|cuesta|cuestan|costo|costos|cobran|"
        r"cobra|cobrar|me sale|sale en|vale|how much|cost|costs|price|fee|fees)\b"),
}
# "¿cuánto tiempo…?" asks a duration, not an amount
_DURATION_ONLY = re.compile(
    r"\b(cuanto tiempo|cuantos (dias|meses|anos|minutos)|cuantas (horas|semanas)|"
    r"en cuanto tiempo|how long)\b")

_UNIT = (r"(minutos?|min|horas?|hrs?|dias?|semanas?|meses|mes|anos?|quincenas?|"
         r"minutes?|hours?|days?|weeks?|months?|years?)")
_NUMBER_WORD = (r"(un|una|uno|dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|once|doce|"
                r"quince|veinte|treinta|one|two|three|four|five|six|seven|ten|twelve)")
_STATES = {
    Wants.AMOUNT: re.compile(
        r"\$\s?\d|\d\s?%|\b\d[\d,.]*\s?(pesos|mxn|usd|dolares)\b|\bgratis\b|"
        r"\bsin costo\b|\bsin cargo\b|\bfree\b|\bveces\b"),
    Wants.DURATION: re.compile(
        rf"\b\d+(\s?a\s?\d+)?\s?{_UNIT}\b|\b{_NUMBER_WORD}\s+{_UNIT}\b|"
        r"\binmediat|\bal momento\b|\bel mismo dia\b|\bimmediately\b|\bsame day\b"),
    Wants.CLOCK: re.compile(r"\b\d{1,2}:\d{2}\b|\b\d{1,2}\s?(am|pm|a\.m\.|p\.m\.)"),
}


def _normalised(question: str) -> str:
    """Folded, with the texting shorthand for "que" spelled out."""
    text = fold(question)
    for pattern, plain in _SHORTHAND:
        text = pattern.sub(plain, text)
    return text


def wanted(question: str) -> frozenset[Wants]:
    """The kinds of fact the question asks for (none: it asks something else)."""
    return _wanted(_normalised(question))


def _wanted(text: str) -> frozenset[Wants]:
    kinds = {kind for kind, pattern in _ASKS.items() if pattern.search(text)}
    if Wants.AMOUNT in kinds and _DURATION_ONLY.search(text) and not re.search(
            r"\b(precio|cuesta|cuestan|costo|cobran|cobra|how much|cost|price|fee)\b", text):
        kinds.discard(Wants.AMOUNT)
    return frozenset(kinds)


def states(kinds: frozenset[Wants], passage: str) -> bool:
    """Whether the passage states a fact of one of these kinds."""
    if not kinds:
        return False
    text = strip_accents(passage.lower())  # punctuation kept: "12:00", "$500"
    return any(_STATES[kind].search(text) for kind in kinds)


# "¿venden…?", "¿tienen…?", "¿hay…?", "¿quedan…?": whether something is sold or in stock
_ASKS_AVAILABLE = re.compile(
    r"\b(venden|vendan|tienen|tiene|hay|manejan|existencia|stock|disponible|disponibles|"
    r"quedan|queda|do you (sell|have)|in stock|available)\b")
# "¿cómo…?", "¿puedo…?", "¿incluye…?", "¿qué pasa si…?", "si rento…": how something works
_ASKS_HOW = re.compile(
    r"\b(como|puedo|se puede|pueden|incluye|incluyen|trae|que pasa|si|sirve|jala|aplica|"
    r"cubre|how|can i|does it|do i)\b")


def question_form(question: str) -> tuple[float, float, float]:
    """Whether the question asks an amount, whether something is sold or in stock, and
    how something works (1.0 or 0.0 each): inputs of the catalog-or-article decision
    (``knowledge.ranking.catalog_inputs``)."""
    text = _normalised(question)
    return (1.0 if Wants.AMOUNT in _wanted(text) else 0.0,
            1.0 if _ASKS_AVAILABLE.search(text) else 0.0,
            1.0 if _ASKS_HOW.search(text) else 0.0)
