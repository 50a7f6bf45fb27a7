"""Integrations with other programs: outgoing webhooks (subscriptions, signed deliveries
retried by the job queue, the delivery log) and the checks on where they may point.
API keys, which integrations use to call us, live with staff auth (``handoff.apikeys``)."""

from bot.integrations.targets import Target, check_target
from bot.integrations.webhooks import EVENTS, SIGNATURE_HEADER, WebhookService, signature

__all__ = ["EVENTS", "SIGNATURE_HEADER", "Target", "WebhookService", "check_target", "signature"]
