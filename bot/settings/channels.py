"""Settings of the WhatsApp channels (``ATIENDE_CHANNELS__…``): pacing and neonize numbers."""

from __future__ import annotations

from datetime import time

from pydantic import BaseModel, ConfigDict, Field


class PacingConfig(BaseModel):
    """How fast one WhatsApp number may send (per number, across all its conversations)."""

    model_config = ConfigDict(frozen=True)

    channels: tuple[str, ...] = Field(
        default=("whatsapp",), description="channels whose numbers are paced (never simulator)"
    )
    messages_per_minute: float = Field(default=8.0, gt=0)
    burst: float = Field(default=3.0, ge=1)
    jitter_seconds: float = Field(default=1.5, ge=0)
    typing_chars_per_second: float = Field(default=18.0, gt=0)
    typing_min_seconds: float = Field(default=0.8, ge=0)
    typing_max_seconds: float = Field(default=6.0, ge=0)
    quiet_start: time | None = Field(default=None, description="local time, e.g. 22:00")
    quiet_end: time | None = Field(default=None, description="local time, e.g. 08:00")
    daily_cap: int = Field(default=1000, ge=0, description="0 = no cap")


class NeonizeConfig(BaseModel):
    """The neonize (WhatsApp multi-device) numbers this deployment connects."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = False
    store_url: str | None = Field(
        default=None,
        description="lib/pq URL of the whatsmeow store, used as given (its own database and "
        "role); empty = the app database, schema STORE_SCHEMA, role STORE_ROLE (created)",
    )
    store_schema: str = Field(default="whatsmeow", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    store_role: str | None = Field(
        default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="the store's database user; empty = <app database>_whatsmeow",
    )
    store_connections_per_number: int = Field(
        default=6, ge=2,
        description="the store role's CONNECTION LIMIT is this x enabled numbers + 1",
    )
    connect_timeout_seconds: float = Field(
        default=90.0, gt=0, description="start → first answer (QR, connected, failure)")
    call_timeout_seconds: float = Field(
        default=120.0, gt=0, description="one send / download through a number's client")
    stop_timeout_seconds: float = Field(
        default=10.0, gt=0, description="a client process is killed if it has not left by then")
    qr_timeout_seconds: float = Field(default=120.0, gt=0)
    lease_seconds: float = Field(default=30.0, gt=1)
    restart_cap: int = Field(default=8, ge=1)
    backoff_initial_seconds: float = Field(default=2.0, gt=0)
    backoff_max_seconds: float = Field(default=300.0, gt=0)
    media_max_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    poll_seconds: float = Field(default=5.0, gt=0, description="how often numbers are checked")
    worker_threads: int = Field(
        default=128, ge=8,
        description="default-executor threads (in-process sessions hold one each for life)",
    )


class ChannelsConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    pacing: PacingConfig = PacingConfig()
    neonize: NeonizeConfig = NeonizeConfig()
