"""Parsing import files into typed records: front-matter Markdown and CSV catalogs.

Every problem is a ``DocumentError`` naming the file and, where it applies, the
line; a file with any problem yields nothing (the caller imports it whole or
not at all).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import frontmatter
import yaml

from knowledge.errors import DocumentError
from knowledge.models import ARTICLE_KINDS

MAX_ARTICLE_CHARS = 100_000
MAX_TITLE_CHARS = 300
MAX_FILE_BYTES = 20 * 1024 * 1024
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,119}$")
SKU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,79}$")
CSV_COLUMNS = ("sku", "name", "description", "price", "currency", "stock", "category")
MAX_PRICE = Decimal("999999999999.99")


@dataclass(frozen=True, slots=True)
class ArticleDoc:
    id: str
    title: str
    kind: str
    tags: tuple[str, ...]
    body: str
    questions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProductDoc:
    sku: str
    name: str
    description: str
    price: Decimal
    currency: str
    stock: int | None
    category: str
    line: int = 0


MAX_QUESTIONS = 40


def _questions(source: str, raw: object, line: int | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(q, str) for q in raw):
        raise DocumentError(source, "'questions' must be a list of texts", line=line)
    clean = tuple(dict.fromkeys(" ".join(q.split()) for q in raw if q.strip()))
    if len(clean) > MAX_QUESTIONS or any(len(q) > MAX_TITLE_CHARS for q in clean):
        raise DocumentError(
            source, f"at most {MAX_QUESTIONS} 'questions' of {MAX_TITLE_CHARS} characters",
            line=line,
        )
    return clean


def validate_article(
    source: str, *, id: object, title: object, kind: object, tags: object, body: str,
    questions: object = None, line: int | None = None,
) -> ArticleDoc:
    """Check one article's fields (shared by import and the admin API)."""
    if not isinstance(id, str) or not ID_PATTERN.match(id):
        raise DocumentError(
            source, f"'id' must be lowercase letters, digits, '-', '_' or '.', got {id!r}",
            line=line,
        )
    if not isinstance(title, str) or not title.strip():
        raise DocumentError(source, "'title' is required", line=line)
    if len(title) > MAX_TITLE_CHARS:
        raise DocumentError(source, f"'title' longer than {MAX_TITLE_CHARS} characters", line=line)
    if kind not in ARTICLE_KINDS:
        raise DocumentError(
            source, f"'kind' must be one of {', '.join(ARTICLE_KINDS)}, got {kind!r}", line=line
        )
    if tags is None:
        tags = []
    if not isinstance(tags, list) or not all(isinstance(t, str | int) for t in tags):
        raise DocumentError(source, "'tags' must be a list of words", line=line)
    clean_tags = tuple(dict.fromkeys(str(t).strip().lower() for t in tags if str(t).strip()))
    if any(len(t) > 80 for t in clean_tags):
        raise DocumentError(source, "a tag is longer than 80 characters", line=line)
    if not body.strip():
        raise DocumentError(source, "the article body is empty", line=line)
    if len(body) > MAX_ARTICLE_CHARS:
        raise DocumentError(
            source,
            f"the article body has {len(body)} characters (limit {MAX_ARTICLE_CHARS}); "
            "split it into several articles",
            line=line,
        )
    if "\x00" in body:
        raise DocumentError(source, "the article body contains NUL characters", line=line)
    return ArticleDoc(id, title.strip(), str(kind), clean_tags, body.strip() + "\n",
                      _questions(source, questions, line))


def parse_markdown(source: str, data: bytes) -> ArticleDoc:
    """One article from a Markdown file with YAML front matter."""
    text = _decode(source, data)
    if not text.lstrip().startswith("---"):
        raise DocumentError(source, "no YAML front matter (the file must start with '---')", line=1)
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        # where the broken construct starts (e.g. an unclosed list), else where it broke
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1  # the YAML text starts at the opening ---
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DocumentError(source, f"broken front matter: {problem}", line=line) from exc
    except ValueError as exc:
        raise DocumentError(source, f"broken front matter: {exc}", line=1) from exc
    meta = post.metadata
    if not isinstance(meta, dict) or not meta:
        raise DocumentError(source, "the front matter is empty or not a mapping", line=1)
    if "id" not in meta:
        raise DocumentError(source, "front matter has no 'id'", line=1)
    if "title" not in meta:
        raise DocumentError(source, "front matter has no 'title'", line=1)
    return validate_article(
        source, id=meta.get("id"), title=meta.get("title"), kind=meta.get("kind", "faq"),
        tags=meta.get("tags"), body=post.content, questions=meta.get("questions"),
    )


def parse_csv(source: str, data: bytes) -> list[ProductDoc]:
    """Every product of a catalog CSV (header: ``CSV_COLUMNS``, any order)."""
    text = _decode(source, data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DocumentError(source, "the CSV file is empty", line=1) from None
    except csv.Error as exc:
        raise DocumentError(source, f"unreadable CSV: {exc}", line=1) from exc
    columns = [h.strip().lower() for h in header]
    _check_header(source, columns)
    products: list[ProductDoc] = []
    seen: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                raise DocumentError(
                    source, f"expected {len(columns)} fields, found {len(row)}", line=line
                )
            product = _product(source, line, dict(zip(columns, row, strict=True)))
            if product.sku in seen:
                raise DocumentError(
                    source, f"duplicate sku {product.sku!r} (first on line {seen[product.sku]})",
                    line=line,
                )
            seen[product.sku] = line
            products.append(product)
    except csv.Error as exc:
        raise DocumentError(source, f"unreadable CSV: {exc}", line=reader.line_num) from exc
    if not products:
        raise DocumentError(source, "the CSV file has a header but no products", line=2)
    return products


def _check_header(source: str, columns: list[str]) -> None:
    missing = [c for c in CSV_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if missing or unknown or len(set(columns)) != len(columns):
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown {', '.join(unknown)}")
        if len(set(columns)) != len(columns):
            parts.append("repeated columns")
        raise DocumentError(
            source, f"wrong columns ({'; '.join(parts)}); expected {','.join(CSV_COLUMNS)}", line=1
        )


def validate_product(
    source: str, *, sku: str, name: str, description: str, price: str | Decimal,
    currency: str, stock: str | int | None, category: str, line: int | None = None,
) -> ProductDoc:
    """Check one product's fields (shared by import and the admin API)."""
    sku = sku.strip()
    if not SKU_PATTERN.match(sku):
        raise DocumentError(source, f"invalid sku {sku!r}", line=line)
    if not name.strip():
        raise DocumentError(source, f"product {sku}: 'name' is required", line=line)
    if len(name) > MAX_TITLE_CHARS:
        raise DocumentError(source, f"product {sku}: 'name' is too long", line=line)
    amount = _price(source, line, sku, price)
    currency = currency.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise DocumentError(
            source, f"product {sku}: currency must be a 3-letter code like MXN, got {currency!r}",
            line=line,
        )
    units: int | None
    if stock is None or (isinstance(stock, str) and not stock.strip()):
        units = None
    else:
        try:
            units = int(str(stock).strip())
        except ValueError:
            raise DocumentError(
                source, f"product {sku}: stock must be a whole number or empty, got {stock!r}",
                line=line,
            ) from None
        if units < 0:
            raise DocumentError(source, f"product {sku}: stock cannot be negative", line=line)
    return ProductDoc(
        sku, name.strip(), description.strip(), amount, currency, units, category.strip(),
        line or 0,
    )


def _product(source: str, line: int, row: dict[str, str]) -> ProductDoc:
    return validate_product(
        source, sku=row["sku"], name=row["name"], description=row["description"],
        price=row["price"], currency=row["currency"], stock=row["stock"],
        category=row["category"], line=line,
    )


def _price(source: str, line: int | None, sku: str, raw: str | Decimal) -> Decimal:
    text = str(raw).strip()
    if not re.fullmatch(r"\d+(\.\d{1,2})?", text):
        raise DocumentError(
            source,
            f"product {sku}: bad price {text!r} (write digits with an optional '.' "
            "and up to 2 decimals, e.g. 8950.00; no currency signs or thousands separators)",
            line=line,
        )
    try:
        amount = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already guarantees a number
        raise DocumentError(source, f"product {sku}: bad price {text!r}", line=line) from None
    if amount > MAX_PRICE:
        raise DocumentError(source, f"product {sku}: price too large", line=line)
    return amount


def _decode(source: str, data: bytes) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise DocumentError(source, f"file larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    if not data.strip():
        raise DocumentError(source, "the file is empty")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DocumentError(source, "not UTF-8 text", line=line) from exc
