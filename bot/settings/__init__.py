"""Typed settings, read once in the composition root (never at import time)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.settings.campaigns import CampaignsConfig
from bot.settings.channels import ChannelsConfig
from bot.settings.media import MediaSettings
from bot.settings.sequences import BlockingConfig, SequencesConfig
from bot.settings.speech import SpeechSettings
from handoff.config import HandoffConfig
from knowledge.config import KnowledgeConfig

DEV_SECRET_KEY = "dev-insecure-secret-change-me"


class WhatsAppCloudSettings(BaseSettings):
    """WhatsApp Cloud API channel; names fixed by CONTRACTS.md (no prefix)."""

    model_config = SettingsConfigDict(env_prefix="WHATSAPP_CLOUD_", extra="ignore", frozen=True)

    verify_token: SecretStr | None = None
    app_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    phone_number_id: str | None = None
    graph_url: str = "https://graph.facebook.com/v21.0"

    @property
    def enabled(self) -> bool:
        return bool(self.app_secret and self.access_token and self.phone_number_id)


class Settings(BaseSettings):
    """Every knob of Atiende. Environment variables are ``ATIENDE_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="ATIENDE_", env_file=".env", extra="ignore", frozen=True,
        env_nested_delimiter="__",
    )

    env: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path(".atiende")
    database_url: str | None = Field(
        default=None, description="postgresql://…; empty starts the embedded server"
    )
    redis_url: str | None = Field(
        default=None, description="redis://… or unix://…; empty starts redis-server"
    )
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    default_region: str = "MX"
    language: str = "es"
    business_name: str = "Seguros Atiende"
    bot_name: str = "Atiende"
    business_timezone: str = "America/Mexico_City"

    memory_ttl_hours: float = 24.0
    memory_max_turns: int = 40

    run_worker_in_app: bool = True
    worker_concurrency: int = 8
    # batches of conversations the inbound dispatcher starts at once, and the most
    # conversations one batch takes (every conversation waiting when a slot frees)
    inbound_concurrency: int = Field(default=2, ge=1, le=64)
    worker_batch: int = Field(default=32, ge=1, le=500)
    job_max_attempts: int = 5
    job_retry_base_seconds: float = 2.0
    stalled_job_seconds: float = 30.0
    reconcile_interval_seconds: float = 5.0

    log_level: str = "INFO"
    log_json: bool = True

    llm_config: Path | None = None
    whatsapp_cloud: WhatsAppCloudSettings = Field(default_factory=WhatsAppCloudSettings)
    channels: ChannelsConfig = ChannelsConfig()
    handoff: HandoffConfig = HandoffConfig()
    media: MediaSettings = MediaSettings()
    speech: SpeechSettings = SpeechSettings()
    load_demo_kb: bool = True
    knowledge: KnowledgeConfig = KnowledgeConfig()
    campaigns: CampaignsConfig = CampaignsConfig()
    sequences: SequencesConfig = SequencesConfig()
    blocking: BlockingConfig = BlockingConfig()

    @model_validator(mode="after")
    def _refuse_defaults_outside_development(self) -> Settings:
        if self.env == "production":
            if self.secret_key.get_secret_value() == DEV_SECRET_KEY:
                raise ValueError("ATIENDE_SECRET_KEY must be set to a real secret in production")
            if len(self.secret_key.get_secret_value()) < 32:
                raise ValueError("ATIENDE_SECRET_KEY must be at least 32 characters in production")
            if not self.database_url or not self.redis_url:
                raise ValueError(
                    "ATIENDE_DATABASE_URL and ATIENDE_REDIS_URL are required in production"
                )
        return self


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment (and ``.env``), with explicit overrides."""
    return Settings(**overrides)  # type: ignore[arg-type]
