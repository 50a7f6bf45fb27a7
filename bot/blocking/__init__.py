"""Knowing when a customer has probably blocked a business number.

``detector`` marks conversations from consecutive undelivered messages (settings
``ATIENDE_BLOCKING__…``), guarded against outages on our side; ``signals`` is the
delivery-receipt listener that clears marks and records each number's receipt health;
``service`` shows and clears marks for staff, and ``is_blocked`` is the check campaigns
and sequences make before sending. Tables in ``models``.
"""

from bot.blocking.detector import BlockDetector, DetectorRun
from bot.blocking.models import BlockState, ContactBlock, DeliveryHealth
from bot.blocking.service import BlockedContacts, BlockView, is_blocked
from bot.blocking.signals import DeliverySignals

__all__ = [
    "BlockDetector",
    "BlockState",
    "BlockView",
    "BlockedContacts",
    "ContactBlock",
    "DeliveryHealth",
    "DeliverySignals",
    "DetectorRun",
    "is_blocked",
]
