"""Query synonyms: the words customers write mapped to the words the knowledge base uses.

Customers write "carro", "troca", "tow truck" or "feria"; the articles say "auto",
"grúa", "efectivo". Full-text search only finds what is spelled alike, so before
the text query the retriever appends the knowledge base's word for every synonym
it finds in the question (whole words, accents and case ignored). The list ships in
``knowledge/data/synonyms.yaml``; a business extends it with its own YAML file of
the same shape (``KnowledgeConfig.synonyms_file``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from knowledge.errors import DocumentError
from knowledge.text import words

_WORDS = re.compile(r"\w+")
# The key whose words mean nothing for search ("oye", "porfa"): dropped, not expanded.
FILLER = "_filler"


def _words(text: str) -> tuple[str, ...]:
    return tuple(words(text))


def plain_words(text: str) -> str:
    """``text`` folded to its words, as ``Synonyms.canonical`` writes them."""
    return " ".join(_words(text))


@dataclass(frozen=True, slots=True)
class Synonyms:
    """Folded variant phrase (as a word tuple) → the canonical terms it adds."""

    table: Mapping[tuple[str, ...], tuple[str, ...]]

    @classmethod
    def empty(cls) -> Synonyms:
        return cls({})

    @classmethod
    def from_mapping(cls, groups: Mapping[str, Iterable[str]]) -> Synonyms:
        table: dict[tuple[str, ...], list[str]] = {}
        for canonical, variants in groups.items():
            target = "" if canonical == FILLER else " ".join(_words(canonical))
            if not target and canonical != FILLER:
                continue
            for variant in variants:
                key = _words(variant)
                if key and target not in table.setdefault(key, []):
                    table[key].append(target)
        return cls({k: tuple(v) for k, v in table.items()})

    def merged(self, other: Synonyms) -> Synonyms:
        table = {k: list(v) for k, v in self.table.items()}
        for key, targets in other.table.items():
            bucket = table.setdefault(key, [])
            bucket += [t for t in targets if t not in bucket]
        return Synonyms({k: tuple(v) for k, v in table.items()})

    def __len__(self) -> int:
        return len(self.table)

    def terms(self, text: str) -> tuple[str, ...]:
        """The canonical terms the synonyms in ``text`` stand for (none already there)."""
        words = _words(text)
        present = set(words)
        longest = max((len(k) for k in self.table), default=0)
        found: list[str] = []
        for start in range(len(words)):
            for size in range(1, min(longest, len(words) - start) + 1):
                for target in self.table.get(words[start:start + size], ()):
                    if target and target not in found and not set(target.split()) <= present:
                        found.append(target)
        return tuple(found)

    def canonical(self, text: str) -> str:
        """``text`` (folded) with every synonym replaced by the knowledge base's word:
        what is left over is what the knowledge base may really not know."""
        words = _words(text)
        longest = max((len(k) for k in self.table), default=0)
        out: list[str] = []
        start = 0
        while start < len(words):
            for size in range(min(longest, len(words) - start), 0, -1):
                targets = self.table.get(words[start:start + size])
                if targets:
                    out += [t for t in targets if t]
                    start += size
                    break
            else:
                out.append(words[start])
                start += 1
        return " ".join(out)

    def expand(self, text: str) -> str:
        """``text`` plus the canonical terms of the synonyms it holds."""
        extra = self.terms(text)
        return f"{text} {' '.join(extra)}" if extra else text


def parse_synonyms(raw: str, *, source: str) -> Synonyms:
    """A YAML mapping ``canonical: [variant, ...]``; ``DocumentError`` when malformed."""
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise DocumentError(source, f"not valid YAML: {exc}") from exc
    if data is None:
        return Synonyms.empty()
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str | int) for x in v) for v in data.values()
    ):
        raise DocumentError(source, "expected a mapping of word: [synonym, ...]")
    return Synonyms.from_mapping({str(k): [str(x) for x in v] for k, v in data.items()})


def load_synonyms(extra: Path | None = None) -> Synonyms:
    """The shipped synonyms, extended by the business's own file when given."""
    shipped = resources.files("knowledge").joinpath("data/synonyms.yaml").read_text("utf-8")
    synonyms = parse_synonyms(shipped, source="knowledge/data/synonyms.yaml")
    if extra is not None:
        try:
            raw = extra.read_text("utf-8")
        except OSError as exc:
            raise DocumentError(str(extra), f"cannot read: {exc.strerror}") from exc
        synonyms = synonyms.merged(parse_synonyms(raw, source=str(extra)))
    return synonyms


def load_common_words() -> frozenset[str]:
    """General Spanish and English words that say nothing about a question's topic
    (``knowledge/data/common_words.txt``): a question word the knowledge base never uses
    counts as unknown only when it is not one of these."""
    shipped = resources.files("knowledge").joinpath("data/common_words.txt").read_text("utf-8")
    return frozenset(
        w for line in shipped.splitlines() for w in words(line.split("#", 1)[0]))
