"""Typed values of the customer-data feature: who is meant, what an erasure did."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.errors import InvalidPhoneNumber, NotFound
from bot.phones import normalize_phone

SIM_PREFIX = "sim:"
LID_PREFIX = "lid:"


class CustomerNotFound(NotFound):
    """No customer is stored under that number (or contact id)."""


class AlreadyErased(NotFound):
    """The number's customer was erased before; nothing is stored under it now."""

    def __init__(self, key: str, erasure_id: uuid.UUID, at: datetime) -> None:
        super().__init__(
            f"{key} was already erased on {at.isoformat(timespec='seconds')} "
            f"(erasure {erasure_id}); nothing is stored under this number now"
        )
        self.erasure_id = erasure_id
        self.at = at


@dataclass(frozen=True, slots=True)
class CustomerRef:
    """Whom an admin means: a contact key (``+52…``, ``sim:+52…``, ``lid:…``) or an id."""

    key: str | None = None
    contact_id: uuid.UUID | None = None

    @classmethod
    def parse(cls, raw: str, *, region: str = "MX") -> CustomerRef:
        """A phone number in any usual form, a simulator (``sim:``) or LID (``lid:``) key,
        or a contact id (UUID); InvalidPhoneNumber otherwise."""
        text = raw.strip()
        try:
            return cls(contact_id=uuid.UUID(text))
        except ValueError:
            pass
        if text.startswith(LID_PREFIX):
            lid = text.removeprefix(LID_PREFIX)
            if not lid or len(text) > 20 or not lid.replace(".", "").isalnum():
                raise InvalidPhoneNumber(raw, "not a WhatsApp LID key (lid:<digits>)")
            return cls(key=text)
        if text.startswith(SIM_PREFIX):
            return cls(key=SIM_PREFIX + normalize_phone(text.removeprefix(SIM_PREFIX), region))
        return cls(key=normalize_phone(text, region))

    def label(self) -> str:
        return self.key if self.key is not None else f"contact {self.contact_id}"


def numbers_of(keys: list[str]) -> tuple[list[str], list[str]]:
    """The real numbers among contact keys, and the numbers behind simulator keys."""
    real = [k for k in keys if k.startswith("+")]
    simulated = [k.removeprefix(SIM_PREFIX) for k in keys if k.startswith(SIM_PREFIX)]
    return real, simulated


@dataclass(frozen=True, slots=True)
class Erased:
    """What erasing one customer did (the API's answer)."""

    contact_id: uuid.UUID
    erasure_id: uuid.UUID
    counts: dict[str, int]
    media_objects: int
    opt_out_kept: bool
    complete: bool = False  # media objects and memory deleted too (else resumed later)
    resumed: bool = False  # an earlier, unfinished erasure of this customer was finished
    # other contacts of the same person erased with it (the simulator's contact of the
    # same number, which a simulated campaign may have written their name to)
    also: tuple[uuid.UUID, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "erased": True, "contact_id": str(self.contact_id),
            "erasure_id": str(self.erasure_id), **self.counts,
            "media_objects": self.media_objects, "opt_out_kept": self.opt_out_kept,
            "complete": self.complete, "resumed": self.resumed,
            "also_erased": [str(c) for c in self.also],
        }

    def joined(self, others: list[Erased]) -> Erased:
        """This erasure with the person's other contacts' counted in."""
        counts = dict(self.counts)
        for other in others:
            for table, n in other.counts.items():
                counts[table] = counts.get(table, 0) + n
        return Erased(
            self.contact_id, self.erasure_id, counts,
            self.media_objects + sum(o.media_objects for o in others),
            self.opt_out_kept, all(e.complete for e in (self, *others)), self.resumed,
            tuple(o.contact_id for o in others),
        )


@dataclass(frozen=True, slots=True)
class ObjectsLeft:
    """The objects phase of one erasure: what is deleted, what waits for another try."""

    erasure_id: uuid.UUID
    deleted: int
    pending: int
    memory_keys: int
    error: str | None = None


@dataclass(slots=True)
class RetentionReport:
    """What one retention run purged, per kind of data."""

    purged: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    more: bool = False  # stopped by the run budget: more is due

    def line(self) -> str:
        done = ", ".join(f"{k} {v}" for k, v in self.purged.items()) or "nothing"
        failed = ", ".join(f"{k} {v}" for k, v in self.failed.items() if v)
        return f"purged: {done}" + (f"; failed (retried next run): {failed}" if failed else "") + (
            "; more is due (next run continues)" if self.more else ""
        )
