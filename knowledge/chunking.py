"""Markdown-aware chunking: sections under their headings, long sections by paragraph.

Each chunk keeps the heading path it sits under, so a passage such as
"Deducible: 5 % del valor" still says which coverage it belongs to. Raw HTML is
removed from chunk text (it is kept in the stored article, escaped when shown).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TARGET_CHARS = 700
MAX_CHARS = 1100

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_TAG = re.compile(r"<[^>]{0,400}>")
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class ChunkDraft:
    ordinal: int
    heading: str
    text: str


def plain(markdown: str) -> str:
    """Markdown to WhatsApp-friendly plain text (no HTML, links as 'text (url)')."""
    text = _SCRIPT.sub(" ", markdown)
    text = _TAG.sub(" ", text)
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"\1 (\2)", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"*\1*", text)
    text = re.sub(r"__([^_]+)__", r"*\1*", text)
    text = re.sub(r"^\s{0,3}>\s?", "", text, flags=re.MULTILINE)
    text = re.sub(r"`([^`]+)`", r"\1", text)
    text = re.sub(r"[ \t]+", " ", text)
    text = _unwrap(text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


_BLOCK_START = re.compile(r"^\s*([-*+•]\s|\d+[.)]\s|\|)")


def _unwrap(text: str) -> str:
    """Join soft-wrapped lines: a line continues the previous one unless it starts a block."""
    out: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if out and out[-1].strip() and stripped and not _BLOCK_START.match(line):
            out[-1] = f"{out[-1].rstrip()} {stripped}"
        else:
            out.append(line.rstrip())
    return "\n".join(out)


def chunk_markdown(body: str) -> list[ChunkDraft]:
    """Split an article body into passages that respect its structure."""
    sections: list[tuple[str, list[str]]] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False

    def close() -> None:
        heading = " › ".join(title for _, title in path)
        if any(line.strip() for line in lines):
            sections.append((heading, list(lines)))
        lines.clear()

    for line in body.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            close()
            level = len(match.group(1))
            path = [p for p in path if p[0] < level]
            path.append((level, plain(match.group(2))))
            continue
        lines.append(line)
    close()
    drafts: list[ChunkDraft] = []
    for heading, section_lines in sections:
        for piece in _split("\n".join(section_lines)):
            text = plain(piece)
            if text:
                drafts.append(ChunkDraft(len(drafts), heading, text))
    return drafts


def _split(text: str) -> list[str]:
    if len(text) <= MAX_CHARS:
        return [text]
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    pieces: list[str] = []
    current = ""
    for paragraph in paragraphs:
        for part in _hard_split(paragraph):
            if current and len(current) + len(part) > TARGET_CHARS:
                pieces.append(current)
                current = ""
            current = f"{current}\n\n{part}" if current else part
    if current:
        pieces.append(current)
    return pieces


def _hard_split(paragraph: str) -> list[str]:
    if len(paragraph) <= MAX_CHARS:
        return [paragraph]
    sentences = re.split(r"(?<=[.!?])\s+|\n", paragraph)
    out: list[str] = []
    current = ""
    for sentence in sentences:
        while len(sentence) > MAX_CHARS:
            out.append(sentence[:MAX_CHARS])
            sentence = sentence[MAX_CHARS:]
        if current and len(current) + len(sentence) + 1 > TARGET_CHARS:
            out.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
    if current:
        out.append(current)
    return out


# -- passage units: what retrieval ranks and what an answer quotes ---------------------

UNIT_MAX_CHARS = 480
_ITEM = re.compile(r"^\s*([-*+•]|\d+[.)])\s+")
_TABLE_RULE = re.compile(r"^:?-{2,}:?$")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+")


def passage_units(body: str) -> list[ChunkDraft]:
    """The article as the passages that can answer a question on their own: each
    paragraph, each list item (after its lead-in line, "Puedes pagar con:"), each table
    row (as "Column: value; …"), under its heading path; long paragraphs are cut at
    sentence ends so a unit fits a WhatsApp reply (about 500 characters)."""
    drafts: list[ChunkDraft] = []
    for section in chunk_markdown_sections(body):
        heading, text = section
        for unit in _units(text):
            drafts.append(ChunkDraft(len(drafts), heading, unit))
    return drafts


def chunk_markdown_sections(body: str) -> list[tuple[str, str]]:
    """(heading path, plain text) of each section, in order (not split by size)."""
    sections: list[tuple[str, str]] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False

    def close() -> None:
        heading = " › ".join(title for _, title in path)
        if any(line.strip() for line in lines):
            sections.append((heading, "\n".join(lines)))
        lines.clear()

    for line in body.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            close()
            level = len(match.group(1))
            path = [p for p in path if p[0] < level]
            path.append((level, plain(match.group(2))))
            continue
        lines.append(line)
    close()
    return sections


def _units(markdown: str) -> list[str]:
    units: list[str] = []
    lead = ""  # a paragraph ending in ":" introduces the list after it
    for block in re.split(r"\n\s*\n", markdown):
        lines = [line for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        if len(lines) >= 2 and all(line.strip().startswith("|") for line in lines):
            units += _table_rows(lines)
        elif any(_ITEM.match(line) for line in lines):
            first = next(i for i, line in enumerate(lines) if _ITEM.match(line))
            before = plain("\n".join(lines[:first]))  # later lines continue their item
            if not before and lead and units and units[-1] == lead:
                units.pop()  # the lead-in says nothing alone: it goes with every item
            head = before or lead
            for item in _list_items(lines[first:]):
                text = plain(item)
                units.append(f"{head}\n{text}" if head else text)
        else:
            paragraph = plain(block)
            if paragraph:
                units += _cut(paragraph)
                lead = paragraph if paragraph.rstrip().endswith(":") else ""
                continue
        lead = ""
    return [u for u in units if u.strip()]


def _list_items(lines: list[str]) -> list[str]:
    """Each item with its continuation lines."""
    items: list[str] = []
    for line in lines:
        if _ITEM.match(line):
            items.append(_ITEM.sub("", line, count=1).strip())
        elif items:
            items[-1] = f"{items[-1]} {line.strip()}"
    return items


def _table_rows(lines: list[str]) -> list[str]:
    def cells(line: str) -> list[str]:
        return [plain(c.strip()) for c in line.strip().strip("|").split("|")]

    header = cells(lines[0])
    rows = []
    for line in lines[1:]:
        values = cells(line)
        if all(_TABLE_RULE.match(v) or not v for v in values):
            continue
        pairs = [f"{h}: {v}" if h else v for h, v in zip(header, values, strict=False) if v]
        rows.append("; ".join(pairs))
    return rows


def _cut(paragraph: str) -> list[str]:
    if len(paragraph) <= UNIT_MAX_CHARS:
        return [paragraph]
    out: list[str] = []
    current = ""
    for sentence in _SENTENCE.split(paragraph):
        while len(sentence) > UNIT_MAX_CHARS:
            cut = sentence[:UNIT_MAX_CHARS].rsplit(" ", 1)[0]
            if current:
                out.append(current)
                current = ""
            out.append(cut)
            sentence = sentence[len(cut):].strip()
        if current and len(current) + len(sentence) + 1 > UNIT_MAX_CHARS:
            out.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
    if current:
        out.append(current)
    return out
