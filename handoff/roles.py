"""Staff roles. Only admins edit the knowledge base, users and settings."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
