"""The persisted outbox: replies are rows first, and are sent from there.

A reply row is unique per (inbound message, position), so a retried job can never
create a second reply. Sending claims rows (``pending`` → ``sending``) with SKIP
LOCKED, so two senders never send the same row.

Channels named in the pacing config (real WhatsApp numbers) are never sent inline:
``send_pending`` queues the number's send job, which drains that number's rows in
order, one at a time, as the ``Pacer`` allows (read mark, typing, jitter); when it
may not send yet the row stays pending and the job is scheduled for later. The
simulator is never paced.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import and_, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.conversation.channel import ChannelRegistry, Presence
from bot.conversation.pacing import Pacer
from bot.db import AutocommitPool, DriverConnection
from bot.errors import ChannelError, ChannelRefused, ChannelUnavailable
from bot.infra.redis_adapter import CacheUnavailable
from bot.logs import get_logger
from bot.messages import Author, MediaRef, MessageKind, OutboundMessage
from bot.metrics import Metrics
from handoff.conversations import Contact, Conversation, Message
from handoff.ownership import Owner

log = get_logger("atiende.outbox")


MAX_SEND_ATTEMPTS = 8
OUT_BATCH = 100  # rows sent per transaction
CACHE_DOWN_RETRY_SECONDS = 5.0
# A sequence step whose sender died mid-send: it may have gone out, so it is not repeated.
INTERRUPTED = "interrupted mid-send: not repeated (it may have gone out)"
# Messages the business starts (not answers): an opt-out cancels them even once queued.
UNSOLICITED = frozenset({Author.CAMPAIGN.value, Author.SEQUENCE.value})

_MARK_SENT = """
UPDATE messages AS m
SET status = 'sent', sent_at = clock_timestamp(), error = NULL, attempts = m.attempts + 1,
    provider_message_id = v.provider_id
FROM unnest(%s::uuid[], %s::text[]) AS v(id, provider_id)
WHERE m.id = v.id
"""

# Channels whose inline sends are marked in the transaction that locked them (nothing
# outside Atiende sees a send twice); the others are claimed first (``_CLAIM_OUT``).
TRANSACTIONAL = ("simulator",)

# A real provider's next row, claimed (``sending``, committed at once) before it is sent.
_CLAIM_OUT = """
WITH claimed AS (
    UPDATE messages SET status = 'sending', claimed_at = clock_timestamp()
    WHERE id IN (
        SELECT m.id FROM messages m
        JOIN conversations c ON c.id = m.conversation_id
        JOIN contacts ct ON ct.id = c.contact_id
        WHERE {where} AND m.id <> ALL(%(tried)s::uuid[])
        ORDER BY m.seq
        LIMIT {limit}
        FOR UPDATE OF m SKIP LOCKED
    )
    RETURNING id
)
SELECT m.id, m.conversation_id, m.kind, m.text, m.author, m.channel, m.attempts, m.raw,
       m.media, c.account, ct.phone_e164, ct.opted_out
FROM messages m
JOIN conversations c ON c.id = m.conversation_id
JOIN contacts ct ON ct.id = c.contact_id
WHERE m.id IN (SELECT id FROM claimed)
ORDER BY m.seq
"""

# Rows to send inline, oldest first, locked (SKIP LOCKED) until the sender's commit.
_PENDING_OUT = """
SELECT m.id, m.conversation_id, m.kind, m.text, m.author, m.channel, m.attempts, m.raw,
       m.media, c.account, ct.phone_e164, ct.opted_out
FROM messages m
JOIN conversations c ON c.id = m.conversation_id
JOIN contacts ct ON ct.id = c.contact_id
WHERE {where}
ORDER BY m.seq
LIMIT {limit}
FOR UPDATE OF m SKIP LOCKED
"""


class SendScheduler(Protocol):
    """Durable, per-number send jobs (``bot.infra.jobs.JobQueue``)."""

    async def defer_send(self, channel: str, account: str, *, delay_seconds: float = 0) -> bool:
        ...


class OutboxSender:
    """Sends pending outbound rows through their channel and records the outcome."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        fast: AutocommitPool,
        channels: ChannelRegistry,
        metrics: Metrics,
        pacer: Pacer | None = None,
        scheduler: SendScheduler | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._sessions = sessions
        self._fast = fast
        self._channels = channels
        self._metrics = metrics
        self._pacer = pacer
        self._scheduler = scheduler
        self._sleep = sleep

    @property
    def _paced(self) -> tuple[str, ...]:
        if self._pacer is None or self._scheduler is None:
            return ()
        return self._pacer.config.channels

    async def send_pending(
        self,
        conversations: uuid.UUID | Sequence[uuid.UUID] | None = None,
        *,
        older_than: timedelta | None = None,
        channels: Collection[str] | None = None,
    ) -> int:
        """Send what is pending (for one conversation, several, or all); return how many
        were sent.

        Rows are locked (SKIP LOCKED) or claimed, so two senders never send one row; if
        this process dies mid-send the row is sent by the next run (a real provider's row
        only if it was the one in flight: see ``_send_claimed``). Rows of paced channels
        are handed to their number's send job instead. ``channels``, when the caller
        knows the conversations' channels, saves the query for the other kind.
        """
        ids = [conversations] if isinstance(conversations, uuid.UUID) else conversations
        paced = {c for c in channels or () if c in self._paced}
        if channels is None or paced:
            await self._schedule_paced(ids, older_than)
            if channels is not None and paced == set(channels):
                return 0
        conditions = ["m.direction = 'out'", "m.status = 'pending'"]
        params: dict[str, object] = {}
        if self._paced:
            conditions.append("m.channel <> ALL(%(paced)s)")
            params["paced"] = list(self._paced)
        if ids is not None:
            conditions.append("m.conversation_id = ANY(%(conversation_ids)s)")
            params["conversation_ids"] = list(ids)
        if older_than is not None:
            conditions.append("m.created_at < now() - %(older_than)s")
            params["older_than"] = older_than
        where = " AND ".join(conditions)
        unpaced = None if channels is None else {c for c in channels if c not in paced}
        sent = 0
        # the simulator's rows: a batch per transaction, sends and marks together (no
        # provider to be sent twice); a real provider's rows: claimed, then each marked
        # sent as soon as the provider took it, so a crash can repeat at most the sends
        # that were in flight, never a whole batch
        for claimed in (False, True):
            wanted = [c for c in unpaced or () if (c in TRANSACTIONAL) != claimed]
            if unpaced is not None and not wanted:
                continue
            clause = "m.channel <> ALL(%(transactional)s)" if claimed else (
                "m.channel = ANY(%(transactional)s)")
            query = f"{where} AND {clause}"
            values = {**params, "transactional": list(TRANSACTIONAL)}
            while True:  # a batch at a time, oldest first
                send = self._send_claimed if claimed else self._send_inline
                batch_sent, fetched, failed = await send(query, values)
                sent += batch_sent
                if fetched < OUT_BATCH or failed:
                    break
        return sent

    async def _send_inline(self, where: str, params: dict[str, object]) -> tuple[int, int, bool]:
        """Send one batch of pending rows; (sent, rows fetched, whether a send failed)."""
        sent = 0
        failed = False
        delivered: list[tuple[uuid.UUID, str | None]] = []
        async with self._fast.connection() as connection, connection.transaction():
            query = _PENDING_OUT.format(where=where, limit=OUT_BATCH)
            cursor = await connection.execute(query, params)
            rows = await cursor.fetchall()
            for row in rows:
                outcome = await self._send_row(connection, row)
                if outcome is None:
                    continue
                if isinstance(outcome, ChannelError):
                    failed = True
                    continue
                delivered.append((row[0], outcome))
                sent += 1
            if delivered:
                # one statement for every row sent (the locks are held until the commit)
                await connection.execute(
                    _MARK_SENT,
                    ([outbox_id for outbox_id, _ in delivered],
                     [provider_id for _, provider_id in delivered]),
                )
        return sent, len(rows), failed

    async def _send_claimed(self, where: str, params: dict[str, object]) -> tuple[int, int, bool]:
        """Up to a batch of rows, one at a time: claim it (``sending``, committed), send
        it, mark it sent. A process that dies leaves at most the row it was sending in
        ``sending`` (:meth:`recover_stuck` puts it back): only that one can go out twice."""
        sent = fetched = 0
        failed = False
        claim = _CLAIM_OUT.format(where=where, limit=1)
        tried: list[uuid.UUID] = []  # a row that failed and went back to pending: not again
        async with self._fast.connection() as connection:
            while fetched < OUT_BATCH:
                row = await (await connection.execute(claim, {**params, "tried": tried})
                             ).fetchone()
                if row is None:
                    break
                fetched += 1
                outcome = await self._send_row(connection, row)
                if isinstance(outcome, ChannelError):
                    failed = True
                    tried.append(row[0])
                elif outcome is not None:
                    await connection.execute(_MARK_SENT, ([row[0]], [outcome]))
                    sent += 1
        return sent, fetched, failed

    async def _send_row(
        self, connection: DriverConnection, row: Sequence[Any]
    ) -> str | None | ChannelError:
        """Send one fetched row: the provider's message id, the error (already recorded on
        the row), or None when the row was cancelled instead (an opt-out)."""
        (outbox_id, conv_id, kind, body, author, row_channel, attempts, raw, media,
         account, phone, opted_out) = row
        if author in UNSOLICITED and opted_out:
            # re-checked at send time: an opt-out beats a message already queued
            await connection.execute(
                "UPDATE messages SET status = 'cancelled', error = 'opted_out' "
                "WHERE id = %s", (outbox_id,),
            )
            log.info("outbox.cancelled", outbox_id=str(outbox_id), reason="opted_out")
            return None
        message = OutboundMessage(
            outbox_id=outbox_id, conversation_id=conv_id, channel=row_channel,
            account=account, to_phone=phone, kind=MessageKind(kind), text=body,
            author=Author(author), template=(raw or {}).get("template"),
            media=_media_ref(media),
        )
        started = time.perf_counter()
        try:
            receipt = await self._channels.get(message.channel).send(message)
        except ChannelError as exc:
            self._metrics.channel_send_seconds.labels(message.channel, "error").observe(
                time.perf_counter() - started
            )
            final = attempts + 1 >= MAX_SEND_ATTEMPTS or isinstance(exc, ChannelRefused)
            await connection.execute(
                "UPDATE messages SET status = %s, attempts = %s, error = %s "
                "WHERE id = %s",
                ("failed" if final else "pending", attempts + 1, str(exc), outbox_id),
            )
            self._failure_logged(message, attempts + 1, exc, final=final)
            return exc
        self._metrics.channel_send_seconds.labels(message.channel, "ok").observe(
            time.perf_counter() - started
        )
        self._metrics.messages_out.labels(message.channel, "sent").inc()
        return receipt.provider_message_id

    async def drain_number(self, channel: str, account: str) -> int:
        """Send one number's pending rows in order, paced; reschedule itself when it must wait."""
        assert self._pacer is not None and self._scheduler is not None
        sent = 0
        while (message := await self._claim_next(channel, account)) is not None:
            try:
                decision = await self._pacer.reserve(channel, account, len(message.text or ""))
            except CacheUnavailable as exc:
                log.warning("outbox.pacing_unavailable", error=str(exc), account=account)
                await self._unclaim(message)
                await self._scheduler.defer_send(
                    channel, account, delay_seconds=CACHE_DOWN_RETRY_SECONDS)
                return sent
            if not decision.send:
                await self._unclaim(message)
                await self._scheduler.defer_send(channel, account, delay_seconds=decision.delay)
                self._metrics.pacing_waits.labels(channel, decision.reason).inc()
                log.info(
                    "outbox.paced", channel=channel, account=account, reason=decision.reason,
                    delay=round(decision.delay, 2), outbox_id=str(message.outbox_id),
                )
                return sent
            await self._human_touch(message, decision.pause)
            try:
                delivered = await self._send_one(message, raise_rate_limit=True)
            except ChannelError as exc:
                await self._scheduler.defer_send(
                    channel, account, delay_seconds=exc.retry_after or 30.0)
                return sent
            sent += delivered
        return sent

    async def _human_touch(self, message: OutboundMessage, pause: float) -> None:
        """Read mark, then "typing…" for the paced pause (presence errors never block a send)."""
        channel = self._channels.get(message.channel)
        if not isinstance(channel, Presence):
            await self._sleep(pause)
            return
        try:
            await channel.mark_read(message)
            await channel.typing(message, active=True)
        except ChannelError as exc:
            log.info("outbox.presence_failed", error=str(exc), outbox_id=str(message.outbox_id))
        await self._sleep(pause)

    async def _schedule_paced(
        self, conversation_ids: Sequence[uuid.UUID] | None, older_than: timedelta | None
    ) -> None:
        if not self._paced or self._scheduler is None:
            return
        conditions = [
            Message.direction == "out", Message.status == "pending",
            Message.channel.in_(self._paced),
        ]
        if conversation_ids is not None:
            conditions.append(Message.conversation_id.in_(conversation_ids))
        if older_than is not None:
            conditions.append(Message.created_at < func.now() - older_than)
        async with self._sessions() as session:
            numbers = (
                await session.execute(
                    select(Message.channel, Conversation.account)
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .where(and_(*conditions))
                    .distinct()
                )
            ).all()
        for channel, account in numbers:
            await self._scheduler.defer_send(channel, account)

    async def _claim_next(self, channel: str, account: str) -> OutboundMessage | None:
        """The oldest pending row of one number, claimed; bot rows of human-owned chats
        are cancelled instead (the bot never talks over a human)."""
        while True:
            message, cancelled = await self._claim_one(
                Message.channel == channel, Conversation.account == account)
            if not cancelled:
                return message

    async def send_each(self, outbox_ids: Sequence[uuid.UUID]) -> int:
        """Send these (unpaced) rows one at a time: each is claimed (``sending``, committed)
        before the channel is called and marked sent right after, so a process killed
        mid-way leaves at most the one row in flight to recovery, not a whole batch sent
        and still pending. For messages the business starts (sequence steps), where a
        repeat is worse than a slower send."""
        sent = 0
        for outbox_id in outbox_ids:
            message, _ = await self._claim_one(Message.id == outbox_id)
            if message is None:
                continue  # sent or taken by someone else, or cancelled
            try:
                sent += await self._send_one(message)
            except ChannelUnavailable:
                continue  # unclaimed: it waits for the channel, like any reply
        return sent

    async def _claim_one(self, *where: Any) -> tuple[OutboundMessage | None, bool]:
        async with self._sessions() as session, session.begin():
            row = (
                await session.execute(
                    select(
                        Message.id, Message.conversation_id, Message.kind, Message.text,
                        Message.author, Message.raw, Message.in_reply_to, Message.media,
                        Message.channel, Conversation.account, Conversation.owner,
                        Contact.phone_e164.label("phone"), Contact.opted_out,
                    )
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .join(Contact, Contact.id == Conversation.contact_id)
                    .where(Message.direction == "out", Message.status == "pending", *where)
                    .order_by(Message.seq)
                    .limit(1)
                    .with_for_update(of=Message, skip_locked=True)
                )
            ).one_or_none()
            if row is None:
                return None, False
            if row.author == Author.BOT.value and row.owner == Owner.HUMAN.value:
                await session.execute(
                    update(Message).where(Message.id == row.id)
                    .values(status="cancelled", error="a human took the conversation")
                )
                log.info("outbox.cancelled", outbox_id=str(row.id), reason="human_owner")
                return None, True
            if row.author in UNSOLICITED and row.opted_out:
                await session.execute(
                    update(Message).where(Message.id == row.id)
                    .values(status="cancelled", error="opted_out")
                )
                log.info("outbox.cancelled", outbox_id=str(row.id), reason="opted_out")
                return None, True
            await session.execute(
                update(Message).where(Message.id == row.id)
                .values(status="sending", attempts=Message.attempts + 1,
                        claimed_at=func.clock_timestamp())
            )
            reply_to = None
            if row.in_reply_to is not None:
                reply_to = (
                    await session.execute(
                        select(Message.provider_message_id).where(Message.id == row.in_reply_to)
                    )
                ).scalar_one_or_none()
        return OutboundMessage(
            outbox_id=row.id, conversation_id=row.conversation_id, channel=row.channel,
            account=row.account, to_phone=row.phone, kind=MessageKind(row.kind), text=row.text,
            author=Author(row.author), template=(row.raw or {}).get("template"),
            reply_to=reply_to, media=_media_ref(row.media),
        ), False

    async def _unclaim(self, message: OutboundMessage) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(Message).where(Message.id == message.outbox_id, Message.status == "sending")
                .values(status="pending", attempts=Message.attempts - 1)
            )

    async def _send_one(self, message: OutboundMessage, *, raise_rate_limit: bool = False) -> int:
        try:
            receipt = await self._channels.get(message.channel).send(message)
        except ChannelUnavailable:
            # The number is reconnecting, banned for a while, or on another node: the row
            # waits without using up its attempts.
            await self._unclaim(message)
            raise
        except ChannelError as exc:
            await self._drain_failed(message, exc)
            if raise_rate_limit and exc.retry_after is not None:
                raise
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

    async def _drain_failed(self, message: OutboundMessage, exc: ChannelError) -> None:
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
        final = isinstance(exc, ChannelRefused) or attempts >= MAX_SEND_ATTEMPTS
        self._failure_logged(message, attempts, exc, final=final)

    def _failure_logged(
        self, message: OutboundMessage, attempts: int, exc: ChannelError, *, final: bool
    ) -> None:
        """A failed send attempt: counted (retry or final) and logged with its ids."""
        self._metrics.messages_out.labels(message.channel, "failed" if final else "retry").inc()
        log.warning(
            "outbox.send_failed", outbox_id=str(message.outbox_id),
            conversation_id=str(message.conversation_id), channel=message.channel,
            attempts=attempts, error=str(exc), retry_after=exc.retry_after,
        )

    async def recover_stuck(self, *, older_than: timedelta) -> int:
        """Rows left in ``sending`` by a process that died go back to ``pending``: claimed
        more than ``older_than`` ago (a reply that waited long for its number and was
        only just taken is being sent now, and must not be sent twice).

        A sequence step is the exception: the process may have died after the channel
        took it, and a follow-up repeated is worse than one missed, so it is marked
        ``failed`` (``INTERRUPTED``) instead of sent again."""
        stuck = (
            Message.direction == "out", Message.status == "sending",
            func.coalesce(Message.claimed_at, Message.created_at) < func.now() - older_than,
        )
        async with self._sessions() as session, session.begin():
            interrupted = await session.execute(
                update(Message)
                .where(*stuck, Message.author == Author.SEQUENCE.value)
                .values(status="failed", error=INTERRUPTED)
                .returning(Message.id)
            )
            for (outbox_id,) in interrupted.all():
                log.warning("outbox.interrupted", outbox_id=str(outbox_id))
            result = await session.execute(
                update(Message).where(*stuck).values(status="pending").returning(Message.id)
            )
            return len(result.all())


def _media_ref(stored: dict[str, object] | None) -> MediaRef | None:
    if not stored or not stored.get("mime_type"):
        return None
    return MediaRef(**{k: v for k, v in stored.items() if k in MediaRef.__slots__})  # type: ignore[arg-type]
