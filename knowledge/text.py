"""Text folding: the one way Atiende compares what people write.

Customers write "Hóla buenasss 😀", "POLIZA" or "póliza"; rules, retrieval helpers and
the checks on LLM drafts all compare the folded form. ``ñ`` stays a letter of its own
("año" is not "ano"); other accents go. Digits are never squeezed ("1000" stays).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold", "fold_words", "strip_accents", "words"]

_TILDE = "\u0303"
# what survives folding besides letters, digits and spaces
_DROP = re.compile(r"[^\w\s?¿!¡.,'%$]")
_REPEATED = re.compile(r"([^\W\d_])\1{2,}")
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[\w%$]+")


def strip_accents(text: str) -> str:
    """Accents off, ``ñ`` kept; case and punctuation untouched."""
    decomposed = unicodedata.normalize("NFD", text)
    kept: list[str] = []
    for char in decomposed:
        if unicodedata.combining(char):
            if char == _TILDE and kept and kept[-1] == "n":
                kept[-1] = "ñ"
            continue
        kept.append(char)
    return "".join(kept)


def fold(text: str) -> str:
    """Lower case, accents off (``ñ`` kept), emoji and symbols as spaces (``? ¿ ! ¡ . , '
    % $`` kept), a letter written three or more times in a row once, single spaces."""
    plain = strip_accents(text.lower())
    return _SPACES.sub(" ", _REPEATED.sub(r"\1", _DROP.sub(" ", plain))).strip()


def words(text: str) -> list[str]:
    """The folded words of ``text`` (punctuation dropped; ``%`` and ``$`` stay attached)."""
    return _WORD.findall(fold(text))


def fold_words(text: str) -> str:
    """``words(text)`` joined by single spaces: folded text without punctuation."""
    return " ".join(words(text))
