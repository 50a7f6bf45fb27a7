"""Delivery statuses of an outbound message (no database here: the neonize client process
imports this without loading SQLAlchemy)."""

from __future__ import annotations

import enum


class DeliveryStatus(enum.StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"
