"""Message templates: ``{variable}`` placeholders filled from a recipient's row.

Only ``{name}`` placeholders are recognised (no attribute access, no format specs), so a
template can never reach into Python objects. Unknown variables are an error before
launch; the variants of a campaign are rotated round-robin over the recipients.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["BUILTIN_VARIABLES", "TemplateError", "render", "variables", "validate_variants"]

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
BUILTIN_VARIABLES = ("nombre", "name", "telefono", "phone")


class TemplateError(ValueError):
    """A template that cannot be filled (unknown variable, empty variant…)."""


def variables(template: str) -> list[str]:
    """The placeholder names of ``template``, in order of appearance, once each."""
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


def validate_variants(variants: Sequence[str], fields: Iterable[str]) -> list[str]:
    """Check every variant uses only known variables; return all variables used."""
    if not variants:
        raise TemplateError("a campaign needs at least one message variant")
    known = set(BUILTIN_VARIABLES) | set(fields)
    used: list[str] = []
    for index, variant in enumerate(variants, start=1):
        if not variant.strip():
            raise TemplateError(f"variant {index} is empty")
        if len(variant) > 4096:
            raise TemplateError(f"variant {index} is longer than 4096 characters")
        unknown = [v for v in variables(variant) if v not in known]
        if unknown:
            raise TemplateError(
                f"variant {index} uses unknown variable(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        used += variables(variant)
    return list(dict.fromkeys(used))


def values_for(name: str | None, phone: str, fields: Mapping[str, str]) -> dict[str, str]:
    first = (name or "").strip()
    return {**fields, "nombre": first, "name": first, "telefono": phone, "phone": phone}


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill ``template``; a missing or empty value is a TemplateError."""

    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1), "")
        if not str(value).strip():
            raise TemplateError(f"no value for {{{match.group(1)}}}")
        return str(value)

    return PLACEHOLDER.sub(fill, template)
