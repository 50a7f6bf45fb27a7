"""The audit log: who did what to which thing, and when (admin and agent actions).

Any feature records its actions through one small service::

    await audit.record(Actor.of(principal), "kb.article.update", f"article:{id}",
                       {"title": title})

or, to commit the entry with the change itself, inside the caller's transaction::

    await audit.record_in(session, actor, "conversation.claim", f"conversation:{id}")

Actions are dotted names, ``<area>.<verb>`` (``auth.login``, ``users.create``,
``conversation.claim``, ``kb.import``); ``target`` is ``<kind>:<id>``; ``details`` is
a small JSON object (never passwords or tokens). Entries are never deleted by the
application; erasing a customer's data (``bot.privacy``) empties the details of the
entries about their conversations, keeping who did what and when.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, func, insert, select
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from handoff.tables import Base

__all__ = ["Actor", "AuditEntry", "AuditLog", "AuditRecord"]


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_action_at", "action", "at"),
        Index("ix_audit_log_actor_at", "actor_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    actor_email: Mapped[str | None] = mapped_column(String(254))
    actor_role: Mapped[str | None] = mapped_column(String(16))
    actor_kind: Mapped[str] = mapped_column(String(16))  # user | cli | system | anonymous
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    client: Mapped[str | None] = mapped_column(String(100))


class _PrincipalLike(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def email(self) -> str: ...
    @property
    def role(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: a logged-in user, the command line, the system, or an anonymous client."""

    kind: str
    id: uuid.UUID | None = None
    email: str | None = None
    role: str | None = None
    client: str | None = None

    @classmethod
    def of(cls, principal: _PrincipalLike, *, client: str | None = None) -> Actor:
        role = getattr(principal.role, "value", principal.role)
        client = client or getattr(principal, "client", None)
        return cls("user", principal.id, principal.email, str(role), client)

    @classmethod
    def cli(cls) -> Actor:
        return cls("cli")

    @classmethod
    def system(cls) -> Actor:
        return cls("system")

    @classmethod
    def anonymous(cls, *, email: str | None = None, client: str | None = None) -> Actor:
        return cls("anonymous", email=email, client=client)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    actor_kind: str
    actor_id: uuid.UUID | None
    actor_email: str | None
    actor_role: str | None
    action: str
    target: str | None
    details: dict[str, Any] = field(default_factory=dict)
    client: str | None = None


def _values(
    actor: Actor, action: str, target: str | None, details: Mapping[str, Any] | None
) -> dict[str, Any]:
    return {
        "actor_kind": actor.kind, "actor_id": actor.id, "actor_email": actor.email,
        "actor_role": actor.role, "client": (actor.client or "")[:100] or None,
        "action": action[:64], "target": target[:200] if target else None,
        "details": dict(details or {}),
    }


class AuditLog:
    """Records admin and agent actions, and reads them back (newest first)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(
        self, actor: Actor, action: str, target: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Record one action in its own transaction."""
        async with self._sessions() as session, session.begin():
            await self.record_in(session, actor, action, target, details)

    @staticmethod
    async def record_in(
        session: AsyncSession, actor: Actor, action: str, target: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Record inside the caller's transaction: the entry commits with the change."""
        await session.execute(insert(AuditEntry).values(**_values(actor, action, target, details)))

    @staticmethod
    async def record_many_in(
        session: AsyncSession, actor: Actor,
        entries: Sequence[tuple[str, str | None, Mapping[str, Any] | None]],
    ) -> None:
        """Several entries of one actor (``(action, target, details)``) in one statement,
        inside the caller's transaction."""
        if entries:
            await session.execute(insert(AuditEntry), [
                _values(actor, action, target, details) for action, target, details in entries
            ])

    async def entries(
        self, *, since: datetime | None = None, until: datetime | None = None,
        action: str | None = None, actor_id: uuid.UUID | None = None,
        before_id: int | None = None, limit: int = 100,
    ) -> Sequence[AuditRecord]:
        """Entries matching the filters, newest first; page with ``before_id``.

        ``action`` matches exactly or, ending in ``.*``, as a prefix (``auth.*``).
        """
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(min(limit, 1000))
        if since is not None:
            query = query.where(AuditEntry.at >= since)
        if until is not None:
            query = query.where(AuditEntry.at < until)
        if action:
            if action.endswith(".*"):
                prefix = action[:-1].replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
                query = query.where(AuditEntry.action.like(prefix + "%"))
            else:
                query = query.where(AuditEntry.action == action)
        if actor_id is not None:
            query = query.where(AuditEntry.actor_id == actor_id)
        if before_id is not None:
            query = query.where(AuditEntry.id < before_id)
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [
            AuditRecord(
                r.id, r.at, r.actor_kind, r.actor_id, r.actor_email, r.actor_role, r.action,
                r.target, dict(r.details or {}), r.client,
            )
            for r in rows
        ]
