"""Contact lists from CSV: columns recognised, phones normalized, bad rows explained.

The header names the columns: a phone column (``telefono``, ``phone``, ``celular``,
``whatsapp``, ``numero``…), an optional name column (``nombre``, ``name``); every other
column is a custom field usable as a template variable (header folded to
``lower_snake_case`` without accents). Rows are rejected with a reason: no phone, invalid
phone, duplicate (of an earlier row), opted out (checked by the service).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field

from bot.errors import InvalidPhoneNumber
from bot.phones import normalize_phone

__all__ = ["CsvListError", "ParsedList", "ParsedRow", "Rejected", "parse_contacts_csv"]

PHONE_COLUMNS = ("telefono", "phone", "celular", "cel", "movil", "whatsapp", "numero", "tel")
NAME_COLUMNS = ("nombre", "name", "nombre_completo", "cliente")


class CsvListError(ValueError):
    """The file as a whole cannot be read as a contact list."""


@dataclass(frozen=True, slots=True)
class ParsedRow:
    row_number: int  # line in the file (the header is line 1)
    phone_e164: str
    name: str | None
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class Rejected:
    row_number: int
    reason: str  # missing_phone | invalid_phone | duplicate | opted_out
    phone: str
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "row": self.row_number, "reason": self.reason, "phone": self.phone,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class ParsedList:
    fields: list[str]
    rows: list[ParsedRow] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    total_rows: int = 0


def fold_header(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.strip().lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "_", plain).strip("_")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # Excel in Mexico saves ANSI


def parse_contacts_csv(
    data: bytes, *, default_region: str = "MX", max_rows: int = 50_000
) -> ParsedList:
    """Read a CSV upload; raise CsvListError when the file itself is unusable."""
    text = _decode(data)
    if not text.strip():
        raise CsvListError("the file is empty")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text.splitlines()[0], delimiters=",;\t|"
        )
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = [fold_header(h) for h in next(reader)]
    phone_col = next((header.index(c) for c in PHONE_COLUMNS if c in header), None)
    if phone_col is None:
        raise CsvListError(
            f"no phone column; name one of: {', '.join(PHONE_COLUMNS)} (got {header})"
        )
    name_col = next((header.index(c) for c in NAME_COLUMNS if c in header), None)
    if len(set(h for h in header if h)) != len([h for h in header if h]):
        raise CsvListError(f"repeated column names in the header: {header}")
    custom = [
        (i, h) for i, h in enumerate(header) if h and i not in (phone_col, name_col)
    ]
    rows: list[ParsedRow] = []
    rejected: list[Rejected] = []
    first_row_of: dict[str, int] = {}
    total = 0
    for line_number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        total += 1
        if total > max_rows:
            raise CsvListError(f"more than {max_rows} rows; split the file")
        raw_phone = cells[phone_col].strip() if phone_col < len(cells) else ""
        if not raw_phone:
            rejected.append(Rejected(line_number, "missing_phone", ""))
            continue
        try:
            phone = normalize_phone(raw_phone, default_region)
        except InvalidPhoneNumber as exc:
            rejected.append(Rejected(line_number, "invalid_phone", raw_phone, exc.reason))
            continue
        if phone in first_row_of:
            detail = f"same number as row {first_row_of[phone]}"
            rejected.append(Rejected(line_number, "duplicate", phone, detail))
            continue
        first_row_of[phone] = line_number
        name = ""
        if name_col is not None and name_col < len(cells):
            name = cells[name_col].strip()[:200]
        fields = {h: (cells[i].strip() if i < len(cells) else "") for i, h in custom}
        rows.append(ParsedRow(line_number, phone, name or None, fields))
    return ParsedList([h for _, h in custom], rows, rejected, total)
