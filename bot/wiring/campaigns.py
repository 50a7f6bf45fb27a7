"""Wiring of outbound campaigns: the admin service and the paced release job."""

from __future__ import annotations

from dataclasses import dataclass

from bot.campaigns import CampaignScheduler, CampaignService
from bot.conversation.outbox import OutboxSender
from bot.infra.jobs import JobQueue
from bot.wiring.core import Core


@dataclass
class Campaigns:
    campaigns: CampaignService
    campaign_scheduler: CampaignScheduler


def campaign_service(core: Core, jobs: JobQueue) -> CampaignService:
    settings = core.settings
    return CampaignService(
        sessions=core.sessions, ticks=jobs, clock=core.clock,
        default_region=settings.default_region,
        max_csv_rows=settings.campaigns.max_csv_rows,
    )


def build_campaigns(core: Core, jobs: JobQueue, outbox: OutboxSender) -> Campaigns:
    """Both, with the release job registered on the queue."""
    settings = core.settings
    scheduler = CampaignScheduler(
        sessions=core.sessions, outbox=outbox, clock=core.clock,
        short_wait_seconds=settings.campaigns.short_wait_seconds,
        run_budget_seconds=settings.campaigns.run_budget_seconds,
    )
    jobs.register_campaigns(scheduler.run)
    return Campaigns(campaign_service(core, jobs), scheduler)
