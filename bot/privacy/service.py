"""The customer-data services together, and the periodic work they share."""

from __future__ import annotations

from dataclasses import dataclass

from bot.privacy.erasure import Eraser
from bot.privacy.export import Exporter
from bot.privacy.retention import Retention
from bot.privacy.values import RetentionReport
from bot.settings.privacy import PrivacySettings

__all__ = ["CustomerData"]


@dataclass
class CustomerData:
    """Export, erasure and retention of customers' data (the runtime's ``privacy``)."""

    exporter: Exporter
    eraser: Eraser
    retention: Retention
    settings: PrivacySettings

    async def maintain(self) -> RetentionReport:
        """The periodic job: finish unfinished erasures, then purge what retention says
        is too old (bounded batches, within the run budget)."""
        await self.eraser.resume()
        return await self.retention.run()
