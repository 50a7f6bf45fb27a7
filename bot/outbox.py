"""The persisted outbox: replies are rows first, and are sent from there.

A reply row is unique per (inbound message, position), so a retried job can never
create a second reply. Sending claims rows (``pending`` → ``sending``) with SKIP
LOCKED, so two senders never send the same row.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.base import ChannelRegistry
from bot.errors import ChannelError
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
        """Send what is pending (for one conversation, or all); return how many were sent.

        Rows are locked (SKIP LOCKED) for the duration of the send and marked in the same
        transaction, so two senders never send one row; if this process dies mid-send
        the row is still ``pending`` and is sent by the next run.
        """
        conditions = [Message.direction == "out", Message.status == "pending"]
        if conversation_id is not None:
            conditions.append(Message.conversation_id == conversation_id)
        if older_than is not None:
            conditions.append(Message.created_at < func.now() - older_than)
        sent = 0
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(
                        Message.id, Message.conversation_id, Message.kind, Message.text,
                        Message.author, Message.channel, Message.attempts,
                        Conversation.account, Contact.phone_e164, Contact.opted_out,
                    )
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .join(Contact, Contact.id == Conversation.contact_id)
                    .where(and_(*conditions))
                    .order_by(Message.seq)
                    .limit(100)
                    .with_for_update(of=Message, skip_locked=True)
                )
            ).all()
            for row in rows:
                if row.author == Author.CAMPAIGN.value and row.opted_out:
                    # re-checked at send time: an opt-out beats a message already queued
                    await session.execute(
                        update(Message).where(Message.id == row.id)
                        .values(status="cancelled", error="opted_out")
                    )
                    log.info("outbox.cancelled", outbox_id=str(row.id), reason="opted_out")
                    continue
                message = OutboundMessage(
                    outbox_id=row.id, conversation_id=row.conversation_id, channel=row.channel,
                    account=row.account, to_phone=row.phone_e164, kind=MessageKind(row.kind),
                    text=row.text, author=Author(row.author),
                )
                try:
                    receipt = await self._channels.get(message.channel).send(message)
                except ChannelError as exc:
                    await self._failed_attempt(session, message, row.attempts + 1, exc)
                    continue
                await session.execute(
                    update(Message)
                    .where(Message.id == message.outbox_id)
                    .values(
                        status="sent", sent_at=func.clock_timestamp(), error=None,
                        attempts=Message.attempts + 1,
                        provider_message_id=receipt.provider_message_id,
                    )
                )
                self._metrics.messages_out.labels(message.channel, "sent").inc()
                sent += 1
        return sent

    async def _failed_attempt(
        self, session: AsyncSession, message: OutboundMessage, attempts: int, exc: ChannelError
    ) -> None:
        final = attempts >= MAX_SEND_ATTEMPTS
        await session.execute(
            update(Message)
            .where(Message.id == message.outbox_id)
            .values(status="failed" if final else "pending", attempts=attempts, error=str(exc))
        )
        self._metrics.messages_out.labels(message.channel, "failed" if final else "retry").inc()
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
