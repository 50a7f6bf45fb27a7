"""Customer data rights: export everything held about a customer, erase it (resumable,
with the opt-out kept as a salted hash and the analytics' counts kept), and retention
(old media, transcripts and texts purged by a periodic job in bounded batches).

- ``holdings``: where customer data lives, one entry per table (a new table = one entry);
- ``store``: the erasure's database transaction; ``whatsmeow``: the customer's rows of
  the neonize numbers' session store; ``erasure``: the service (objects, resume);
  ``export``: JSON and archive; ``retention``: the purge job;
- ``reapply``: the erasure log carried across a backup restore.

The HTTP routes are in ``bot/api/routes/contacts.py``, the commands in
``bot/cli/contacts.py``, the wiring in ``bot/wiring/privacy.py``.
"""

from bot.privacy.erasure import Eraser, Outcome
from bot.privacy.export import ArchiveSummary, Exporter
from bot.privacy.holdings import HOLDINGS, NOT_PERSONAL, Holding
from bot.privacy.metrics import PrivacyMetrics
from bot.privacy.retention import Retention
from bot.privacy.service import CustomerData
from bot.privacy.values import (
    AlreadyErased,
    CustomerNotFound,
    CustomerRef,
    Erased,
    RetentionReport,
)

__all__ = [
    "HOLDINGS",
    "NOT_PERSONAL",
    "AlreadyErased",
    "ArchiveSummary",
    "CustomerData",
    "CustomerNotFound",
    "CustomerRef",
    "Erased",
    "Eraser",
    "Exporter",
    "Holding",
    "Outcome",
    "PrivacyMetrics",
    "Retention",
    "RetentionReport",
]
