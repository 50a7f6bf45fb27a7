"""Wiring of the integrations: outgoing webhooks (API keys live with staff auth)."""

from __future__ import annotations

from bot.infra.jobs import JobQueue
from bot.integrations.webhooks import WebhookService
from bot.wiring.core import Core


def build_webhooks(core: Core, jobs: JobQueue) -> WebhookService:
    """The webhook service, its delivery job bound to the queue (before it opens)."""
    settings = core.settings
    service = WebhookService(
        core.sessions, http=core.http, jobs=jobs,
        secret_key=settings.secret_key.get_secret_value(),
        # loopback and private targets: fine in development, refused in production
        allow_private=settings.env != "production" or settings.webhooks_allow_private,
        timeout_seconds=settings.webhooks_timeout_seconds, clock=core.clock,
    )
    jobs.register_webhooks(
        service.deliver, max_attempts=settings.webhooks_max_attempts,
        retry_base_seconds=settings.webhooks_retry_base_seconds,
    )
    return service
