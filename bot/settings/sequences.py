"""Follow-up sequences (``ATIENDE_SEQUENCES__…``) and blocked-contact detection
(``ATIENDE_BLOCKING__…``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SequencesConfig(BaseModel):
    """How the sequence tick finds and queues due steps."""

    model_config = ConfigDict(frozen=True)

    tick_seconds: int = Field(
        default=10, ge=0, le=59,
        description="how often due steps are looked for (0: no periodic tick in this process)",
    )
    tick_batch: int = Field(
        default=200, ge=1, le=5000, description="due steps queued per transaction"
    )
    tick_budget_seconds: float = Field(
        default=20.0, gt=0, description="longest one tick keeps queueing batches"
    )
    max_queued_per_number: int = Field(
        default=20, ge=1,
        description="unsent sequence messages one paced number may hold in its outbox; more "
        "wait as due (customers' replies never queue behind a wall of follow-ups)",
    )
    recheck_minutes: float = Field(
        default=15.0, gt=0, description="a paused enrollment (human owner, opt-out) is looked "
        "at again after this long",
    )


class BlockingConfig(BaseModel):
    """When a contact is marked "probably blocked" (see ``bot.blocking``)."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    messages: int = Field(
        default=3, ge=1, le=50,
        description="consecutive messages accepted by WhatsApp but never delivered",
    )
    hours: float = Field(
        default=72.0, gt=0, description="how long they stay undelivered (watched while the "
        "number's delivery receipts were flowing) before the contact is marked",
    )
    outage_minutes: float = Field(
        default=60.0, gt=0,
        description="a number whose receipts stopped this long ago while messages to "
        "several conversations wait for one is in an outage (ours or WhatsApp's): what it "
        "sent until the receipts come back is never evidence",
    )
    outage_conversations: int = Field(
        default=5, ge=2,
        description="how many conversations must wait for a receipt to call it an outage "
        "(fewer looks like a few customers who blocked the number)",
    )
    channels: tuple[str, ...] = Field(
        default=("whatsapp", "whatsapp_cloud"),
        description="channels that report deliveries (the simulator does not)",
    )
    check_seconds: int = Field(
        default=30, ge=0, le=59, description="how often the detector runs (0: not here)"
    )
