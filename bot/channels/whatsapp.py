"""WhatsApp multi-device numbers (neonize) as Atiende sees them: the inbound sink and the
outbound ``Channel``. Nothing here knows about protobuf; sessions are behind ``WaSession``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.lid_merge import LID_PREFIX, Merged, lid_key, merge_lid_into_phone
from bot.channels.receipts import Receipt, ReceiptRecorder
from bot.channels.wa_events import WHATSAPP_CHANNEL, IncomingMessage, IncomingReceipt
from bot.conversation.ingest import Accepted, Ingestor
from bot.errors import AtiendeError, ChannelError, ChannelRefused, ChannelUnavailable
from bot.logs import get_logger
from bot.messages import InboundMessage, MediaRef, MessageKind, OutboundMessage, SendReceipt
from handoff.conversations import Contact

log = get_logger("atiende.whatsapp")

__all__ = ["LID_PREFIX", "LidDirectory", "LiveSessions", "WhatsAppChannel", "WhatsAppInbound"]


class MediaSaver(Protocol):
    """The part of ``bot.media.MediaStore`` the channels use."""

    async def save(
        self, chunks: AsyncIterator[bytes], *, kind: MessageKind, mime_type: str,
        filename: str | None = None,
    ) -> MediaRef: ...

    def read(self, key: str) -> AsyncIterator[bytes]: ...


class WaSession(Protocol):
    """What the channel needs from one live number (``NeonizeSession`` implements it)."""

    account: str

    async def send_text(self, to_phone: str, text: str) -> str: ...

    async def send_media(
        self, to_phone: str, kind: MessageKind, data: bytes, *, caption: str | None,
        filename: str | None, mime_type: str | None,
    ) -> str: ...

    async def typing(self, to_phone: str, *, active: bool) -> None: ...

    async def mark_read(self, message_id: str, from_phone: str) -> None: ...


class LiveSessions:
    """The sessions connected on THIS node, by account (filled by the supervisors)."""

    def __init__(self) -> None:
        self._sessions: dict[str, WaSession] = {}

    def put(self, session: WaSession) -> None:
        self._sessions[session.account] = session

    def drop(self, account: str, session: WaSession | None = None) -> None:
        if session is None or self._sessions.get(account) is session:
            self._sessions.pop(account, None)

    def get(self, account: str) -> WaSession:
        try:
            return self._sessions[account]
        except KeyError:
            # Not connected here (reconnecting, or owned by another node): try again soon.
            raise ChannelUnavailable(
                f"number {account} is not connected on this node", channel=WHATSAPP_CHANNEL,
                retry_after=15.0,
            ) from None

    def accounts(self) -> list[str]:
        return sorted(self._sessions)


class WhatsAppChannel:
    """The ``Channel`` (and ``Presence``) for neonize numbers; routes by account."""

    name = WHATSAPP_CHANNEL

    def __init__(self, sessions: LiveSessions, media: MediaSaver | None = None) -> None:
        self._sessions = sessions
        self._media = media

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Text, or a voice note / image / document from the media store (with caption)."""
        session = self._sessions.get(message.account)
        try:
            if message.media is not None and message.media.key:
                wamid = await self._send_media(session, message)
            elif message.kind is MessageKind.TEXT and message.text:
                wamid = await session.send_text(message.to_phone, message.text)
            else:
                raise ChannelRefused(f"nothing to send in a {message.kind.value} message",
                                     channel=WHATSAPP_CHANNEL)
        finally:
            await self._stop_typing(session, message)
        return SendReceipt(provider_message_id=wamid)

    async def _send_media(self, session: WaSession, message: OutboundMessage) -> str:
        media = message.media
        assert media is not None and media.key is not None
        if self._media is None:
            raise ChannelRefused("no media store to read from", channel=WHATSAPP_CHANNEL)
        try:
            data = b"".join([chunk async for chunk in self._media.read(media.key)])
        except AtiendeError as exc:
            raise ChannelRefused(f"media {media.key}: {exc}", channel=WHATSAPP_CHANNEL) from exc
        return await session.send_media(
            message.to_phone, message.kind, data, caption=message.text,
            filename=media.filename, mime_type=media.mime_type,
        )

    async def mark_read(self, message: OutboundMessage) -> None:
        if message.reply_to:
            await self._sessions.get(message.account).mark_read(
                message.reply_to, message.to_phone)

    async def typing(self, message: OutboundMessage, *, active: bool) -> None:
        await self._sessions.get(message.account).typing(message.to_phone, active=active)

    async def _stop_typing(self, session: WaSession, message: OutboundMessage) -> None:
        try:
            await session.typing(message.to_phone, active=False)
        except ChannelError as exc:
            log.info("whatsapp.presence_failed", account=message.account, error=str(exc))


class LidDirectory:
    """WhatsApp LIDs (hidden-number ids) ↔ our contacts' phone numbers (``contacts.wa_lid``)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def phone_for(self, lid: str) -> str | None:
        async with self._sessions() as session:
            phone: str | None = (
                await session.execute(select(Contact.phone_e164).where(Contact.wa_lid == lid))
            ).scalar_one_or_none()
        return phone

    async def remember(self, lid: str, phone: str) -> Merged | None:
        """The LID's number is known now: one contact for them (a contact stored under
        the LID alone is merged into the phone contact, atomically)."""
        async with self._sessions() as session, session.begin():
            merged = await merge_lid_into_phone(session, lid=lid, phone=phone)
        if merged is not None:
            log.info("whatsapp.lid_merged", lid=lid, contact_id=str(merged.contact_id),
                     removed_contact_id=str(merged.removed_contact_id),
                     conversations_merged=merged.conversations_merged,
                     conversations_moved=merged.conversations_moved,
                     tickets_closed=merged.tickets_closed)
        return merged


class WhatsAppInbound:
    """Stores what a number receives: messages (with media) and delivery receipts."""

    def __init__(
        self,
        *,
        ingestor: Ingestor,
        receipts: ReceiptRecorder,
        lids: LidDirectory,
        media: MediaSaver | None,
        media_max_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._ingestor = ingestor
        self._receipts = receipts
        self._lids = lids
        self._media = media
        self._max = media_max_bytes

    async def receipt(self, event: IncomingReceipt) -> int:
        return await self._receipts.record(
            Receipt(WHATSAPP_CHANNEL, event.message_ids, event.status, at=event.at)
        )

    async def message(self, event: IncomingMessage) -> Accepted:
        """Persist one message (idempotent on its WhatsApp id)."""
        phone = await self._phone(event)
        media, raw = await self._download(event)
        message = InboundMessage(
            channel=WHATSAPP_CHANNEL,
            account=event.account,
            provider_message_id=event.message_id,
            sender_phone=phone,
            sender_name=event.sender_name,
            kind=event.kind,
            text=event.text,
            media=media,
            received_at=event.at,
            from_owner=event.from_owner,
            raw=raw,
        )
        accepted = await self._ingestor.accept(message)
        if event.peer.lid and event.peer.phone:
            await self._lids.remember(event.peer.lid, event.peer.phone)
        return accepted

    async def _phone(self, event: IncomingMessage) -> str:
        if event.peer.phone:
            return event.peer.phone
        if event.peer.lid:
            known = await self._lids.phone_for(event.peer.lid)
            if known:
                return known
            # Unknown hidden number: keep the message under the LID itself (replies go
            # to the LID address); nothing is dropped.
            log.info("whatsapp.unmapped_lid", lid=event.peer.lid, wamid=event.message_id)
            return lid_key(event.peer.lid)
        raise ChannelRefused(f"message {event.message_id} has no sender", channel=WHATSAPP_CHANNEL)

    async def _download(
        self, event: IncomingMessage
    ) -> tuple[MediaRef | None, dict[str, object]]:
        raw = dict(event.raw)
        if event.mime_type is None:
            return None, raw
        pending = MediaRef(mime_type=event.mime_type, filename=event.filename,
                           provider_media_id=event.message_id)
        if event.download is None or self._media is None:
            raw["media_error"] = "no media store configured"
            return pending, raw
        try:
            data = await event.download()
            if len(data) > self._max:
                raise ChannelRefused(f"media of {len(data)} bytes is over the limit",
                                     channel=WHATSAPP_CHANNEL)
            ref = await self._media.save(
                _chunks(data), kind=event.kind, mime_type=event.mime_type,
                filename=event.filename,
            )
        except AtiendeError as exc:
            # Keep the message (and say so): an agent sees it arrived without its media.
            log.warning("whatsapp.media_failed", wamid=event.message_id, error=str(exc))
            raw["media_error"] = str(exc)[:500]
            return pending, raw
        return dataclasses.replace(ref, provider_media_id=event.message_id), raw


async def _chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
