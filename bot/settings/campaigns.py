"""Campaign settings (``ATIENDE_CAMPAIGNS__…``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CampaignsConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_csv_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    max_csv_rows: int = Field(default=50_000, gt=0)
    short_wait_seconds: float = Field(
        default=5.0, ge=0, description="gaps up to this long are waited inside the tick job"
    )
    run_budget_seconds: float = Field(
        default=50.0, gt=0, description="longest a tick job keeps releasing before re-deferring"
    )
