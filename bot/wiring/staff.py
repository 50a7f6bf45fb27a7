"""Wiring of the people's side: handoff (owner changes, queues), the inbox, auth, audit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.answering.generation import Summarizer
from bot.wiring.adapters import SummarizerPort
from bot.wiring.conversation import Delivery
from bot.wiring.core import Core
from handoff.apikeys import ApiKeys
from handoff.audit import AuditLog
from handoff.auth import AuthService
from handoff.hours import LiveHours
from handoff.inbox import InboxQueries
from handoff.schedule import ScheduleBook
from handoff.service import HandoffService
from handoff.workspace import Workspace


@dataclass
class Staff:
    handoff: HandoffService
    inbox: InboxQueries
    auth: AuthService
    audit: AuditLog
    api_keys: ApiKeys
    workspace: Workspace
    schedule: ScheduleBook


def auth_service(core: Core) -> AuthService:
    """Logins and tokens, with failed logins throttled in Redis."""
    from bot.infra.redis_adapter import RedisRateLimiter

    idle = core.settings.security.session_idle_minutes
    return AuthService(
        core.sessions, limiter=RedisRateLimiter(core.redis), clock=core.clock,
        idle_timeout=timedelta(minutes=idle) if idle > 0 else None,
    )


def build_staff(core: Core, delivery: Delivery, *, summarizer: Summarizer) -> Staff:
    config, clock = core.settings.handoff, core.clock
    # one LiveHours for the whole process: an admin's edit reaches timers, notices and inbox
    hours = LiveHours(config.hours, config.timezone, config.holidays)
    handoff = HandoffService(
        core.sessions, config=config, publisher=core.events, outbox=delivery.outbox,
        memory=delivery.memory, clock=clock, hours=hours,
    )
    inbox = InboxQueries(
        core.sessions, config=config, clock=clock,
        summarizer=SummarizerPort(summarizer, clock=clock), hours=hours,
    )
    workspace = Workspace(core.sessions, config=config, clock=clock, hours=hours,
                          publisher=core.events)
    return Staff(handoff, inbox, auth_service(core), AuditLog(core.sessions),
                 ApiKeys(core.sessions, clock=clock), workspace,
                 ScheduleBook(core.sessions, config=config, live=hours))
