"""Outbound campaigns: contact lists from CSV, templated variants, paced release."""

from bot.campaigns.schedule import Pacing, Window, WindowError
from bot.campaigns.scheduler import CampaignScheduler
from bot.campaigns.service import CampaignService
from bot.campaigns.values import CampaignDraft, CampaignView, ListView, Progress
from bot.settings.campaigns import CampaignsConfig

__all__ = [
    "CampaignDraft",
    "CampaignScheduler",
    "CampaignService",
    "CampaignView",
    "CampaignsConfig",
    "ListView",
    "Pacing",
    "Progress",
    "Window",
    "WindowError",
]
