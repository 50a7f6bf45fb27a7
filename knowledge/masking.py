"""Personal data out of suggested knowledge-base text, before an admin sees it.

What customers and agents write in a handoff becomes a suggestion; before anyone reads
it, phone numbers, e-mail addresses, card numbers, policy/contract/folio numbers and
people's names are replaced by a placeholder of their kind (``[teléfono]``,
``[correo]``, ``[tarjeta]``, ``[número de póliza]``, ``[identificación]`` for an RFC or
CURP, ``[nombre]``), and the kinds
masked are kept, so the admin sees what was taken out (never the value).

Names are found three ways: the names the conversation knows (the customer's contact
name, the agents'), a name after a cue ("soy …", "me llamo …", "Hola …", "Sr. …"), and
a capitalized common first name (``knowledge/data/first_names.txt``) with the
capitalized words that follow it. Contact data the business itself publishes in its
knowledge base (its phone, its e-mail domain) is not personal and stays.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from importlib import resources

from knowledge.text import fold

__all__ = [
    "KINDS",
    "MaskItem",
    "Masked",
    "PublicData",
    "leaked_items",
    "mask",
    "placeholder",
]

KINDS = ("email", "card", "phone", "policy", "id", "name")
_PLACEHOLDERS = {
    "email": "[correo]", "card": "[tarjeta]", "phone": "[teléfono]",
    "policy": "[número de póliza]", "id": "[identificación]", "name": "[nombre]",
}
PLACEHOLDER_PATTERN = re.compile(
    "|".join(re.escape(p) for p in _PLACEHOLDERS.values())
)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# a run of digits with the separators people type (spaces, dashes, dots, parentheses)
_DIGIT_RUN = re.compile(r"\+?\(?\d(?:[\d\s().-]*\d)?")
# codes like AT-7788123 or GMM-2024-88123: letters and digits joined by dashes
_CODE = re.compile(
    r"\b(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+\b")
_POLICY_CUE = re.compile(
    r"\b(p[oó]liza|contrato|folio|expediente|siniestro|referencia|cuenta|cliente|"
    r"certificado|n[uú]mero|no\.|n[uú]m\.?|#)\s*(?:de\s+\w+\s*)?(?:es\s+)?(?:el\s+|la\s+)?"
    r"(?:n[uú]mero\s+|no\.?\s*|#\s*|:\s*)?([A-Za-z]{0,5}[-\s]?\d[\w-]{3,})",
    re.IGNORECASE,
)
# Mexican RFC and CURP (tax and population ids)
_PERSONAL_ID = re.compile(
    r"\b(?:[A-ZÑ&]{4}\d{6}[HM][A-Z]{5}[A-Z0-9]\d|[A-ZÑ&]{3,4}\d{6}[A-Z0-9]{3})\b",
    re.IGNORECASE,
)
_MONEY_BEFORE = re.compile(r"[$€]\s*$")
_MONEY_AFTER = re.compile(r"^\s*(?:pesos|mxn|usd|d[oó]lares|mil|k\b|%|a[nñ]os|meses|d[ií]as)",
                          re.IGNORECASE)
_GROUPED = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")

_CAP = r"[A-ZÁÉÍÓÚÑÜ][a-záéíóúñü]+"
_NAME_CUES = re.compile(
    r"(?i:\b(?:me\s+llamo|mi\s+nombre\s+es|soy|habla|le\s+escribe|te\s+escribe|"
    r"a\s+nombre\s+de|atentamente|att\.?|saludos|hola|buen[oa]s?\s+(?:d[ií]as|tardes|noches)|"
    r"qu[eé]\s+tal|gracias|estimad[oa]|querid[oa]|hi|hello|dear|claro|perfecto|"
    r"sr\.?|sra\.?|srta\.?|lic\.?|ing\.?|dr\.?|dra\.?|don|doña|se[nñ]or(?:a|ita)?)"
    r"[\s,!¡.:]+)"
    rf"((?:{_CAP}|[a-záéíóúñü]+)(?:\s+(?:de\s+la\s+|de\s+los\s+|del\s+|de\s+)?{_CAP}){{0,3}})"
)
_CAPITALIZED_RUN = re.compile(rf"\b{_CAP}(?:\s+(?:de\s+la\s+|del\s+|de\s+)?{_CAP}){{0,3}}\b")
# words a cue may be followed by that are not names ("Hola, buenas tardes", "soy cliente")
_NOT_NAMES = frozenset(fold(w) for w in (
    "buenas buenos buen tardes dias días noches que qué como cómo estas estás esta está "
    "gracias muchas claro si sí no ok de del la el los las un una cliente clienta nuevo nueva "
    "estudiante asegurado asegurada socio socia tu su mi usted ustedes todos todas equipo "
    "señor señora joven amigo amiga aqui aquí por para con en y o a ya tengo quiero "
    "necesito quisiera perdon perdón disculpa oiga oye bueno pues este esta estos "
    "mañana tarde noche lunes martes miercoles miércoles jueves viernes sabado sábado "
    "domingo seguros seguro poliza póliza atiende"
).split())


@dataclass(frozen=True, slots=True)
class MaskItem:
    """One masked value (kept in memory to check approved text; never stored)."""

    kind: str
    original: str


@dataclass(frozen=True, slots=True)
class Masked:
    text: str
    items: tuple[MaskItem, ...] = ()

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.kind] = counts.get(item.kind, 0) + 1
        return counts


@dataclass(frozen=True, slots=True)
class PublicData:
    """Contact data the business publishes in its knowledge base: not personal."""

    phones: frozenset[str] = field(default_factory=frozenset)  # digits only
    emails: frozenset[str] = field(default_factory=frozenset)  # lower case
    domains: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> PublicData:
        phones: set[str] = set()
        emails: set[str] = set()
        for text in texts:
            for match in _EMAIL.finditer(text):
                emails.add(match.group().lower())
            for match in _DIGIT_RUN.finditer(text):
                digits = re.sub(r"\D", "", match.group())
                if 8 <= len(digits) <= 15:
                    phones.add(digits[-10:])
        domains = frozenset(e.rsplit("@", 1)[1] for e in emails)
        return cls(frozenset(phones), frozenset(emails), domains)


def placeholder(kind: str) -> str:
    return _PLACEHOLDERS[kind]


@functools.lru_cache(maxsize=1)
def _first_names() -> frozenset[str]:
    raw = resources.files("knowledge").joinpath("data/first_names.txt").read_text("utf-8")
    return frozenset(
        w for line in raw.splitlines() if not line.startswith("#") for w in line.split()
    )


def mask(text: str, *, names: Iterable[str] = (), public: PublicData | None = None) -> Masked:
    """``text`` with personal data replaced by placeholders (see the module)."""
    public = public or PublicData()
    found: list[MaskItem] = []

    def sub(pattern: re.Pattern[str], kind: str, text: str, keep: object = None,
            group: int = 0) -> str:
        def replace(match: re.Match[str]) -> str:
            value = match.group(group)
            decided = keep(match) if callable(keep) else None
            if decided is True:
                return match.group(0)
            kind_here = decided if isinstance(decided, str) else kind
            found.append(MaskItem(kind_here, value.strip()))
            whole = match.group(0)
            return whole.replace(value, placeholder(kind_here)) if group else \
                placeholder(kind_here)
        return pattern.sub(replace, text)

    out = sub(_EMAIL, "email", text, keep=lambda m: _public_email(m.group(), public))
    out = sub(_PERSONAL_ID, "id", out)
    out = sub(_POLICY_CUE, "policy", out, keep=_not_a_policy, group=2)
    out = sub(_CODE, "policy", out, keep=lambda m: sum(c.isdigit() for c in m.group()) < 4)
    out = sub(_DIGIT_RUN, "phone", out, keep=lambda m: _digits_kind(m, public))
    out = _mask_names(out, names, found)
    return Masked(_merge_adjacent(out), tuple(found))


def _public_email(address: str, public: PublicData) -> bool:
    address = address.lower()
    return address in public.emails or address.rsplit("@", 1)[1] in public.domains


def _not_a_policy(match: re.Match[str]) -> bool:
    value = match.group(2)
    digits = sum(c.isdigit() for c in value)
    if fold(match.group(1)).rstrip(".") in ("numero", "no", "num", "#") \
            and 8 <= digits <= 15 and not re.search(r"[A-Za-z]", value):
        return True  # "mi número es 5512349876": a phone, masked as one next
    return digits < 4 or _is_money(match, 2)


def _is_money(match: re.Match[str], group: int = 0) -> bool:
    before = match.string[: match.start(group)]
    after = match.string[match.end(group):]
    return bool(_MONEY_BEFORE.search(before) or _MONEY_AFTER.match(after))


def _digits_kind(match: re.Match[str], public: PublicData) -> bool | str:
    """True to keep the run; else the kind it is masked as."""
    raw = match.group()
    digits = re.sub(r"\D", "", raw)
    if len(digits) < 6 or _is_money(match) or _GROUPED.match(raw.strip()):
        return True
    if 16 <= len(digits) <= 19 or (13 <= len(digits) <= 15 and _luhn(digits)):
        return "card"
    if 8 <= len(digits) <= 15:
        return True if digits[-10:] in public.phones else "phone"
    return "policy"


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _mask_names(text: str, names: Iterable[str], found: list[MaskItem]) -> str:
    known = {fold(w) for name in names for w in re.findall(r"[^\W\d_]{3,}", name)}
    known -= _NOT_NAMES
    first = _first_names()

    def cue(match: re.Match[str]) -> str:
        words = match.group(1).split()
        head = fold(words[0])
        if head in _NOT_NAMES or not (words[0][0].isupper() or head in first or head in known):
            return match.group(0)
        found.append(MaskItem("name", match.group(1)))
        return match.group(0)[: match.start(1) - match.start(0)] + placeholder("name")

    for _ in range(2):  # "Hola, soy Ana": the second cue follows the first
        text = _NAME_CUES.sub(cue, text)

    def run(match: re.Match[str]) -> str:
        words = [fold(w) for w in match.group().split()]
        if words[0] in first or any(w in known for w in words):
            found.append(MaskItem("name", match.group()))
            return placeholder("name")
        return match.group()

    text = _CAPITALIZED_RUN.sub(run, text)
    return _replace_folded(text, known, found) if known else text


def _replace_folded(text: str, known: Collection[str], found: list[MaskItem]) -> str:
    """Known names written in any case or without accents ("laura", "mendez")."""

    def word(match: re.Match[str]) -> str:
        if fold(match.group()) in known:
            found.append(MaskItem("name", match.group()))
            return placeholder("name")
        return match.group()

    return re.sub(r"(?<!\[)\b[^\W\d_]{3,}\b(?!\])", word, text)


def _merge_adjacent(text: str) -> str:
    name = re.escape(placeholder("name"))
    return re.sub(rf"{name}(?:\s+{name})+", placeholder("name"), text)


def leaked_items(text: str, originals: Iterable[MaskItem]) -> list[MaskItem]:
    """The masked values that ``text`` holds again (digits compared without separators,
    names as whole words, accents and case ignored)."""
    folded = fold(text)
    digits = re.sub(r"\D", "", text)
    leaked = []
    for item in originals:
        if item.kind in ("phone", "card") or (item.kind == "policy" and item.original.isdigit()):
            value = re.sub(r"\D", "", item.original)
            if len(value) >= 6 and value in digits:
                leaked.append(item)
        elif item.kind == "name":
            words = [w for w in fold(item.original).split() if len(w) >= 3]
            if any(re.search(rf"\b{re.escape(w)}\b", folded) for w in words):
                leaked.append(item)
        elif fold(item.original) and fold(item.original) in folded:
            leaked.append(item)
    return leaked
