"""The handoff settings (``Settings.handoff``; env ``ATIENDE_HANDOFF__<NAME>``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from handoff.hours import BusinessHours

DEFAULT_SKILLS: dict[str, list[str]] = {
    "siniestros": ["siniestro", "choque", "chocaron", "accidente", "robo", "robaron", "grua",
                   "ajustador", "claim", "crash", "accident", "stolen"],
    "cobranza": ["pago", "pagar", "cobro", "cargo", "factura", "tarjeta", "adeudo", "deuda",
                 "recibo", "mensualidad", "payment", "charge", "invoice", "bill"],
    "ventas": ["cotiz", "comprar", "contratar", "precio", "cuanto cuesta", "seguro nuevo",
               "quote", "buy", "price", "product"],
}


class HandoffConfig(BaseModel):
    """Queues, assignment, business hours, SLA targets, timeouts and CSAT."""

    model_config = ConfigDict(frozen=True)

    assignment: Literal["least_busy", "round_robin"] = "least_busy"
    default_capacity: int = Field(default=3, ge=1, le=100)
    # "mon-fri 09:00-18:00; sat 10:00-14:00" in business_timezone; empty = always open
    hours: str = "mon-fri 09:00-18:00; sat 10:00-14:00"
    timezone: str = "America/Mexico_City"
    holidays: list[str] = Field(default_factory=list, description="ISO dates, closed all day")
    idle_timeout_minutes: float = Field(default=120, gt=0)
    timeout_check_seconds: int = Field(default=30, ge=1, le=59)
    first_response_sla_minutes: float = Field(default=15, gt=0)
    resolution_sla_minutes: float = Field(default=240, gt=0)
    avg_handle_minutes: float = Field(default=8, gt=0)
    csat: bool = True
    csat_window_hours: float = Field(default=24, gt=0)
    skills: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_SKILLS))
    # escalation reasons and intents that pick a skill directly
    reason_skills: dict[str, str] = Field(
        default_factory=lambda: {"complaint": "general", "product": "ventas"}
    )

    @model_validator(mode="after")
    def _hours_readable(self) -> HandoffConfig:
        BusinessHours.parse(self.hours, self.timezone, self.holidays)  # InvalidHours: ValueError
        return self
