"""What of a handoff's (already masked) text is worth keeping: a question without the
greeting around it, an agent's reply without its pleasantries, a title, an article id.

Pure functions. A reply is *substantive* when, without greetings, thanks, offers of
more help and placeholders, at least ``MIN_INFORMATIVE_WORDS`` words are left: "ok",
"👍", "¡Con gusto!" or "¿Algo más en que te ayude?" teach the bot nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from knowledge.masking import PLACEHOLDER_PATTERN, placeholder
from knowledge.text import fold, words

__all__ = [
    "MIN_INFORMATIVE_WORDS",
    "article_body",
    "article_id",
    "clean_question",
    "informative_words",
    "substantive",
    "title_for",
]

MIN_INFORMATIVE_WORDS = 3
MAX_TITLE_CHARS = 120
MAX_QUESTION_CHARS = 300

_COURTESY = frozenset(fold(w) for w in (
    "hola holi buenas buenos buen dia dias día días tardes noches que qué tal gracias "
    "muchas mil gusto placer ayudar ayudarte ayudo apoyarte apoyo puedo puedes podemos "
    "algo mas más servirte servir orden ordenes órdenes quedo quedamos atento atenta "
    "atentos pendiente pendientes saludos saludo excelente perfecto claro si sí ok okay "
    "oki vale listo nada bienvenido bienvenida favor cualquier duda dudas otra cosa "
    "seguimos contacto bonito lindo linda tengas tenga feliz fin semana interes interés "
    "comunicarte comunicarse escribirnos escribir contactarnos gusto saludarte "
    "disculpa disculpe perdon perdón espera momento permiteme permíteme "
    "hi hello thanks thank welcome anything else help great sure ok bye adios adiós"
).split())
_STOP = frozenset(fold(w) for w in (
    "a al algo algun alguna ante con como cual de del el ella ellos en entre era es esa "
    "ese eso esta este esto estos estas fue ha hay la las le les lo los me mi mis muy nos "
    "o para pero por que q se sea ser si sin sobre su sus te ti tu tus un una uno unos "
    "unas y ya yo usted ustedes nosotros the a an of to and is are you your we our it in "
    "on for"
).split())
# a sentence ends at . ! ? followed by a space or the end ("$14,500.00" is one word)
_SENTENCE = re.compile(r"\S.*?(?:[.!?]+(?=\s|$)|$)")
_GREETING_LEAD = re.compile(
    r"^\s*[¡!]?\s*(?:hola|qu[eé]\s+tal|buen[oa]s?(?:\s+(?:d[ií]as|tardes|noches))?|claro|"
    r"perfecto|listo|con\s+gusto|hi|hello)\b(?:\s+" + re.escape(placeholder("name")) +
    r")?\s*[,!.:]*\s*",
    re.IGNORECASE,
)
# placeholders that say "this was about one customer": such a sentence is left out of
# a draft (a business phone or e-mail stays, for the admin to fill in)
_PERSONAL = tuple(placeholder(k) for k in ("name", "policy", "card", "id"))


def informative_words(text: str) -> list[str]:
    """The words of ``text`` that are neither courtesy, nor function words, nor masked."""
    plain = PLACEHOLDER_PATTERN.sub(" ", text)
    return [w for w in words(plain)
            if w not in _COURTESY and w not in _STOP and not w.isdigit() and len(w) > 1]


def substantive(text: str) -> bool:
    """Whether a reply says something a knowledge base could hold."""
    return len(informative_words(text)) >= MIN_INFORMATIVE_WORDS


def _sentences(text: str) -> list[str]:
    return [s.strip() for line in text.splitlines() for s in _SENTENCE.findall(line)
            if s.strip()]


def _without_greeting(sentence: str) -> str:
    rest = _GREETING_LEAD.sub("", sentence, count=1).strip()
    if rest and rest != sentence.strip():
        rest = rest[0].upper() + rest[1:]
    return rest


def _keep(sentence: str, *, personal_ok: bool) -> str | None:
    sentence = _without_greeting(sentence)
    if not informative_words(sentence):
        return None
    if not personal_ok and any(p in sentence for p in _PERSONAL):
        return None
    return sentence


def clean_question(text: str) -> str:
    """The question without greetings, thanks and sentences about the customer's own
    data ("Hola, soy [nombre]. ¿Aseguran motos? Mi correo es [correo]" → "¿Aseguran
    motos?"); the whole text when nothing else is left."""
    kept = [s for s in (_keep(x, personal_ok=False) for x in _sentences(text)) if s]
    kept = [s for s in kept if not PLACEHOLDER_PATTERN.search(s)] or kept
    out = " ".join(kept) if kept else " ".join(text.split())
    return out[:MAX_QUESTION_CHARS].strip()


def title_for(question: str) -> str:
    """A short title from a (clean) question: its first question sentence, as asked (a
    subject-only title, "Seguro para mascotas", matched fewer paraphrases: the question's
    own words are what the next customer writes)."""
    sentences = _sentences(question)
    asked = next((s for s in sentences if s.endswith("?")), sentences[0] if sentences else "")
    title = asked.strip()
    if title.endswith("?") and "¿" not in title:
        title = "¿" + title
    if len(title) > MAX_TITLE_CHARS:
        title = title[:MAX_TITLE_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    if not title:
        return "Pregunta de clientes"
    lead = 1 if title.startswith("¿") else 0
    return title[: lead + 1].upper() + title[lead + 1:]


def article_body(replies: Iterable[str]) -> str:
    """The agents' replies as article text: pleasantries and sentences about one
    customer left out, one paragraph per reply."""
    paragraphs = []
    for reply in replies:
        kept = [s for s in (_keep(x, personal_ok=False) for x in _sentences(reply)) if s]
        if kept:
            paragraphs.append(" ".join(kept))
    return "\n\n".join(dict.fromkeys(paragraphs))


def article_id(title: str, taken: Sequence[str] = ()) -> str:
    """A new article id from a title (``aseguran-motos``, then ``aseguran-motos-2``…)."""
    base = "-".join(w for w in words(PLACEHOLDER_PATTERN.sub(" ", title)) if w.isalnum())
    base = re.sub(r"[^a-z0-9-]", "", base.replace("ñ", "n"))[:60].strip("-") or "sugerencia"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate
