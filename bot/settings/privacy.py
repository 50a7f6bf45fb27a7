"""Customer data settings (``ATIENDE_PRIVACY__…``): how long data is kept, erasure batches."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

# what each retention setting removes, for the error message of a bad value
_KEEPS = {
    "media_days": "voice notes, images and documents",
    "transcript_days": "voice-note transcripts",
    "text_days": "message texts, internal notes, webhook payloads and to-do sequence steps",
}


class PrivacySettings(BaseModel):
    """Retention (days; empty = keep for ever) and the bounds of background purges."""

    model_config = ConfigDict(frozen=True)

    media_days: int | None = Field(default=90, description="media files older than this go")
    transcript_days: int | None = Field(default=730, description="voice transcripts")
    text_days: int | None = Field(default=730, description="message texts, notes, payloads")
    retention_every_minutes: int = Field(default=10, ge=1, le=59)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    run_budget_seconds: float = Field(default=30.0, gt=0, le=600)
    batch_pause_seconds: float = Field(default=0.05, ge=0, le=10)
    # customers erased per transaction by a bulk erasure (`atiende contacts erase --file`):
    # the inbound pipeline's commits wait for the WAL flush of the eraser's, so smaller
    # transactions keep its latency (10: p95 within 20% of idle; 50: 50-80% over on an
    # idle machine, BENCHMARKS.md)
    erase_batch: int = Field(default=10, ge=1, le=1000)
    # after each batch a bulk erasure rests this many times what the batch took (3: it
    # works a quarter of the time), leaving the machine to the inbound pipeline
    erase_yield: float = Field(default=3.0, ge=0, le=100)
    # a bulk erasure (more than one customer) runs at this CPU niceness: when the machine
    # is busy the inbound pipeline goes first (0: the same priority as the bot)
    erase_nice: int = Field(default=10, ge=0, le=19)
    # after an erasure's objects are gone, its memory keys are deleted once more this
    # much later: a worker that committed just before the erasure may still write them
    settle_seconds: float = Field(default=60.0, ge=0, le=3600)

    @field_validator("media_days", "transcript_days", "text_days", mode="before")
    @classmethod
    def _empty_is_for_ever(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("", "never", "none"):
            return None
        return value

    @field_validator("media_days", "transcript_days", "text_days")
    @classmethod
    def _at_least_a_day(cls, value: int | None, info: object) -> int | None:
        name = str(getattr(info, "field_name", ""))
        if value is not None and value < 1:
            raise ValueError(
                f"ATIENDE_PRIVACY__{name.upper()}={value}: {_KEEPS.get(name, 'data')} would "
                "be deleted as soon as they arrive, before anyone could use them. Use 1 or "
                "more days, or leave it empty to keep them for ever."
            )
        return value
