"""The persisted outbox: replies are rows first, and are sent from there.

A reply row is unique per (inbound message, position), so a retried job can never
create a second reply. Sending claims rows (``pending`` → ``sending``) with SKIP
LOCKED, so two senders never send the same row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import and_, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.base import ChannelRegistry
from bot.errors import ChannelError, ChannelRefused
from bot.logs import get_logger
from bot.messages import Author, MessageKind, OutboundMessage
from bot.metrics import Metrics
from handoff.records import Contact, Conversation, Message

log = get_logger("atiende.outbox")

MAX_SEND_ATTEMPTS = 8


class OutboxSender:
    """Sends pending outbound rows through their channel and records the outcome."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        channels: ChannelRegistry,
        metrics: Metrics,
    ) -> None:
        self._sessions = sessions
        self._channels = channels
        self._metrics = metrics

    async def send_pending(
        self, conversation_id: uuid.UUID | None = None, *, older_than: timedelta | None = None
    ) -> int:
        """Send what is pending (for one conversation, or all); return how many were sent."""
        claimed = await self._claim(conversation_id, older_than)
        sent = 0
        for message in claimed:
            sent += await self._send_one(message)
        return sent

    async def _claim(
        self, conversation_id: uuid.UUID | None, older_than: timedelta | None
    ) -> Sequence[OutboundMessage]:
        conditions = [Message.direction == "out", Message.status == "pending"]
        if conversation_id is not None:
            conditions.append(Message.conversation_id == conversation_id)
        if older_than is not None:
            conditions.append(Message.created_at < func.now() - older_than)
        async with self._sessions() as session, session.begin():
            ids = (
                select(Message.id)
                .where(and_(*conditions))
                .order_by(Message.seq)
                .limit(100)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            rows = (
                await session.execute(
                    update(Message)
                    .where(Message.id.in_(ids))
                    .values(status="sending", attempts=Message.attempts + 1)
                    .returning(
                        Message.id, Message.seq, Message.conversation_id, Message.kind,
                        Message.text, Message.author, Message.channel, Message.raw,
                    )
                )
            ).all()
            if not rows:
                return []
            conv_ids = {r.conversation_id for r in rows}
            targets = {
                c.id: (c.account, c.phone)
                for c in (
                    await session.execute(
                        select(
                            Conversation.id, Conversation.account,
                            Contact.phone_e164.label("phone"),
                        )
                        .join(Contact, Contact.id == Conversation.contact_id)
                        .where(Conversation.id.in_(conv_ids))
                    )
                ).all()
            }
        return [
            OutboundMessage(
                outbox_id=r.id, conversation_id=r.conversation_id, channel=r.channel,
                account=targets[r.conversation_id][0], to_phone=targets[r.conversation_id][1],
                kind=MessageKind(r.kind), text=r.text, author=Author(r.author),
                template=(r.raw or {}).get("template"),
            )
            for r in sorted(rows, key=lambda r: r.seq)
        ]

    async def _send_one(self, message: OutboundMessage) -> int:
        try:
            receipt = await self._channels.get(message.channel).send(message)
        except ChannelError as exc:
            await self._failed_attempt(message, exc)
            return 0
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(Message)
                .where(Message.id == message.outbox_id)
                .values(
                    status="sent", sent_at=func.clock_timestamp(),
                    provider_message_id=receipt.provider_message_id, error=None,
                )
            )
        self._metrics.messages_out.labels(message.channel, "sent").inc()
        return 1

    async def _failed_attempt(self, message: OutboundMessage, exc: ChannelError) -> None:
        async with self._sessions() as session, session.begin():
            attempts = (
                await session.execute(
                    update(Message)
                    .where(Message.id == message.outbox_id)
                    .values(
                        status=(
                            "failed"
                            if isinstance(exc, ChannelRefused)
                            else text(
                                f"CASE WHEN attempts >= {MAX_SEND_ATTEMPTS} THEN 'failed' "
                                "ELSE 'pending' END"
                            )
                        ),
                        error=str(exc),
                    )
                    .returning(Message.attempts)
                )
            ).scalar_one()
        permanent = isinstance(exc, ChannelRefused)
        outcome = "failed" if permanent or attempts >= MAX_SEND_ATTEMPTS else "retry"
        self._metrics.messages_out.labels(message.channel, outcome).inc()
        log.warning(
            "outbox.send_failed", outbox_id=str(message.outbox_id),
            conversation_id=str(message.conversation_id), channel=message.channel,
            attempts=attempts, error=str(exc), retry_after=exc.retry_after,
        )

    async def recover_stuck(self, *, older_than: timedelta) -> int:
        """Rows left in ``sending`` by a process that died go back to ``pending``."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(Message)
                .where(
                    Message.direction == "out",
                    Message.status == "sending",
                    Message.created_at < func.now() - older_than,
                )
                .values(status="pending")
                .returning(Message.id)
            )
            return len(result.all())
