"""Security settings (``ATIENDE_SECURITY__…``): body limits, sessions, who reads /metrics
and /docs, extra origins allowed for cookie-authenticated requests."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_MB = 1024 * 1024


class SecuritySettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    # bodies are refused with 413 before they are read past these sizes
    max_body_bytes: int = Field(default=1 * _MB, gt=0, description="JSON and forms")
    webhook_max_bytes: int = Field(default=1 * _MB, gt=0, description="/webhooks/*")
    upload_max_bytes: int = Field(default=20 * _MB, gt=0,
                                  description="knowledge-base imports (multipart)")
    # a login token unused for this long stops working (0: only its absolute expiry)
    session_idle_minutes: float = Field(default=480.0, ge=0)
    # "" anyone; "staff" signed-in staff only; else comma-separated networks (staff too)
    metrics_allow: str = ""
    docs_allow: str = ""
    # origins besides the request's own Host that cookie-authenticated changes may come
    # from (a reverse proxy that rewrites Host): "https://atiende.example.com,…"
    allowed_origins: str = ""
