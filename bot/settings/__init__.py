"""Typed settings, read once in the composition root (never at import time)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.settings.campaigns import CampaignsConfig
from bot.settings.channels import ChannelsConfig
from bot.settings.media import MediaSettings
from bot.settings.privacy import PrivacySettings
from bot.settings.security import SecuritySettings
from bot.settings.sequences import BlockingConfig, SequencesConfig
from bot.settings.speech import SpeechSettings
from handoff.config import HandoffConfig
from knowledge.config import KnowledgeConfig, SuggestionsConfig

DEV_SECRET_KEY = "dev-insecure-secret-change-me"
# What .env.example and the README put where a secret goes: refused in production.
PLACEHOLDERS = ("change-me", "changeme", "change_me")
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(p in lowered for p in PLACEHOLDERS)


def parse_networks(spec: str) -> tuple[IpNetwork, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` → networks (a bare address is a /32 or /128)."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()
    )


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
    # ``atiende worker`` serves /healthz and /metrics here (0: no HTTP at all)
    worker_port: int = Field(default=8001, ge=0, le=65535)
    worker_concurrency: int = 8
    # batches of conversations the inbound dispatcher starts at once, and the most
    # conversations one batch takes (every conversation waiting when a slot frees)
    inbound_concurrency: int = Field(default=2, ge=1, le=64)
    worker_batch: int = Field(default=32, ge=1, le=500)
    job_max_attempts: int = 5
    job_retry_base_seconds: float = 2.0
    stalled_job_seconds: float = 30.0
    # a reply a dead process had claimed for sending is sent again after this long: keep
    # it above the longest send (provider timeout, typing time), or a slow send repeats
    send_claim_seconds: float = Field(default=120.0, ge=1)
    reconcile_interval_seconds: float = 5.0

    log_level: str = "INFO"
    log_json: bool = True

    # The simulator channel (pages and /api/v1/simulator/*): on by default in development,
    # off in production (404), where turning it on requires a staff login.
    simulator: bool | None = None
    # Reverse proxies whose X-Forwarded-For is believed (comma-separated addresses or
    # networks); the client IP of throttling and the audit log comes from it.
    trusted_proxies: str = ""
    # Outgoing webhooks: production refuses loopback and private-range targets unless
    # ATIENDE_WEBHOOKS_ALLOW_PRIVATE=true; deliveries are retried with backoff.
    webhooks_allow_private: bool = False
    webhooks_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhooks_max_attempts: int = Field(default=8, ge=1, le=30)
    webhooks_retry_base_seconds: int = Field(default=2, ge=1, le=600)

    llm_config: Path | None = None
    whatsapp_cloud: WhatsAppCloudSettings = Field(default_factory=WhatsAppCloudSettings)
    channels: ChannelsConfig = ChannelsConfig()
    handoff: HandoffConfig = HandoffConfig()
    media: MediaSettings = MediaSettings()
    speech: SpeechSettings = SpeechSettings()
    load_demo_kb: bool = True
    knowledge: KnowledgeConfig = KnowledgeConfig()
    suggestions: SuggestionsConfig = SuggestionsConfig()
    campaigns: CampaignsConfig = CampaignsConfig()
    privacy: PrivacySettings = PrivacySettings()
    sequences: SequencesConfig = SequencesConfig()
    blocking: BlockingConfig = BlockingConfig()
    security: SecuritySettings = SecuritySettings()
    # LLM providers' api_base: production refuses loopback and private-range URLs unless
    # ATIENDE_LLM_ALLOW_PRIVATE=true (a local Ollama, say); like webhook targets
    llm_allow_private: bool = False

    @property
    def simulator_enabled(self) -> bool:
        return self.simulator if self.simulator is not None else self.env != "production"

    @property
    def trusted_proxy_networks(self) -> tuple[IpNetwork, ...]:
        return parse_networks(self.trusted_proxies)

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        try:
            parse_networks(value)
        except ValueError as exc:
            raise ValueError(f"ATIENDE_TRUSTED_PROXIES: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _refuse_defaults_outside_development(self) -> Settings:
        if self.env == "production":
            secret = self.secret_key.get_secret_value()
            if secret == DEV_SECRET_KEY or is_placeholder(secret):
                raise ValueError("ATIENDE_SECRET_KEY must be set to a real secret in production "
                                 "(generate one: openssl rand -hex 32)")
            if len(secret) < 32:
                raise ValueError("ATIENDE_SECRET_KEY must be at least 32 characters in production")
            if not self.database_url or not self.redis_url:
                raise ValueError(
                    "ATIENDE_DATABASE_URL and ATIENDE_REDIS_URL are required in production"
                )
            for name, value in (("ATIENDE_DATABASE_URL", self.database_url),
                                ("ATIENDE_REDIS_URL", self.redis_url)):
                if is_placeholder(value):
                    raise ValueError(f"{name} still has a placeholder password (change-me) "
                                     "in production: replace it")
            s3_secret = self.media.s3_secret_access_key
            if s3_secret is not None and is_placeholder(s3_secret.get_secret_value()):
                raise ValueError("ATIENDE_MEDIA__S3_SECRET_ACCESS_KEY is still a placeholder "
                                 "(change-me) in production: replace it")
        return self


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment (and ``.env``), with explicit overrides."""
    return Settings(**overrides)  # type: ignore[arg-type]
