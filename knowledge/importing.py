"""Import files: Markdown articles and CSV catalogs parsed per file, and the report.

Each file is imported whole or not at all; an id or sku defined by two files of the
same import fails both files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from knowledge.documents import ArticleDoc, ProductDoc, parse_csv, parse_markdown
from knowledge.errors import DocumentError

__all__ = ["FileResult", "ImportReport", "ParsedFile", "check_duplicates", "parse_file"]


@dataclass(frozen=True, slots=True)
class FileResult:
    """What happened to one file: how many records it saved, or why it failed."""

    source: str
    articles: int = 0
    products: int = 0
    unchanged: int = 0
    error: str | None = None
    line: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class ImportReport:
    """Every file's result and what ``--replace`` removed."""

    files: tuple[FileResult, ...]
    removed_articles: tuple[str, ...] = ()
    removed_products: tuple[str, ...] = ()
    replace_skipped: bool = False

    @property
    def failed(self) -> tuple[FileResult, ...]:
        return tuple(f for f in self.files if not f.ok)

    def summary(self) -> str:
        articles = sum(f.articles for f in self.files)
        products = sum(f.products for f in self.files)
        unchanged = sum(f.unchanged for f in self.files)
        text = (
            f"{len(self.files) - len(self.failed)} files imported, {len(self.failed)} failed: "
            f"{articles} articles and {products} products saved, {unchanged} unchanged"
        )
        if self.removed_articles or self.removed_products:
            text += (
                f", removed {len(self.removed_articles)} articles and "
                f"{len(self.removed_products)} products"
            )
        if self.replace_skipped:
            text += " (--replace skipped: some files failed)"
        return text


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """One file's records, or the error that keeps the whole file out."""

    source: str
    articles: list[ArticleDoc] = field(default_factory=list)
    products: list[ProductDoc] = field(default_factory=list)
    error: DocumentError | None = None


def parse_file(source: str, data: bytes) -> ParsedFile:
    """A ``.md`` file is one article, a ``.csv`` file a product catalog."""
    try:
        if source.lower().endswith(".csv"):
            return ParsedFile(source, products=parse_csv(source, data))
        if source.lower().endswith((".md", ".markdown")):
            return ParsedFile(source, articles=[parse_markdown(source, data)])
        raise DocumentError(source, "unsupported file type (use .md or .csv)")
    except DocumentError as exc:
        return ParsedFile(source, error=exc)


def check_duplicates(parsed: list[ParsedFile]) -> list[ParsedFile]:
    """An id or sku defined by two files of one import fails both files."""
    ids = Counter(a.id for p in parsed for a in p.articles)
    skus = Counter(x.sku for p in parsed for x in p.products)
    owners: dict[str, list[str]] = {}
    for p in parsed:
        for key in [f"id {a.id!r}" for a in p.articles] + [f"sku {x.sku!r}" for x in p.products]:
            owners.setdefault(key, []).append(p.source)
    out = []
    for p in parsed:
        dup = [f"id {a.id!r}" for a in p.articles if ids[a.id] > 1]
        dup += [f"sku {x.sku!r}" for x in p.products if skus[x.sku] > 1]
        if dup:
            others = sorted({s for key in dup for s in owners[key] if s != p.source})
            error = DocumentError(
                p.source, f"duplicate {dup[0]} (also in {', '.join(others)})",
                line=next((x.line for x in p.products if skus[x.sku] > 1), None) or None,
            )
            out.append(ParsedFile(p.source, error=error))
        else:
            out.append(p)
    return out
