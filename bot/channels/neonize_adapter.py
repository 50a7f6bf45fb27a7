"""The neonize adapter: the ONLY module that imports neonize (WhatsApp multi-device).

Small pieces, each with one job:

- ``EventMapper``: whatsmeow protobuf events → our typed events (``wa_events``);
  protobuf never leaves this module.
- ``NeonizeSession``: one number's client: registers handlers (one per event type,
  neonize keeps only the last), pushes mapped events onto an ordered queue, and
  offers send / presence / read / download / pairing code, translating neonize's
  exceptions into ``ChannelError``.
- ``store_devices``: the devices whatsmeow's store holds (creating/upgrading its tables).

Handlers run on neonize's module-wide loop and their exceptions are silently lost,
so a handler only maps and enqueues; a consumer task (owned by the supervisor)
does the slow work, in order.

``connect()`` returns at once with the task that runs the connection; a dial or store
failure lands in that task later, so ``start`` watches it and reports a ``FAILED``
connection event. Resuming a device the store does not hold crashes the whole process in
Go (nil pointer in ``whatsmeow.NewClient``): callers check ``store_devices`` first, and
production runs each number in its own process (``neonize_host``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import io
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from bot.channels.delivery import DeliveryStatus
from bot.channels.wa_events import (
    WHATSAPP_CHANNEL,
    ConnectionEvent,
    ConnState,
    IncomingMessage,
    IncomingReceipt,
    WaAddress,
)
from bot.channels.wa_store import explain_connect_error, explain_store_error
from bot.errors import ChannelError, ChannelRefused, InvalidPhoneNumber, SessionStoreError
from bot.logs import get_logger
from bot.messages import MessageKind
from bot.phones import normalize_phone


def _closing_popen(cmd: str, mode: str = "r", buffering: int = -1) -> io.StringIO:
    with _os_popen(cmd, mode, buffering) as stream:
        return io.StringIO(stream.read())


# neonize's import runs os.popen("uname -a").read() and never closes the pipe
# (neonize/utils/platform.py), leaking a file and an unreaped child process. For the
# duration of the import only, os.popen reads and closes.
_os_popen = os.popen
os.popen = _closing_popen  # type: ignore[assignment]
try:
    # GetAllDevices is only reachable through the private binder: ClientFactory's wrapper
    # turns its "error: …" answer into a ValueError and loses the text (neonize 0.5.2).
    from neonize._binder import func_callback_bytes2, gocode
    from neonize.aioze import events as neonize_events
    from neonize.aioze.client import NewAClient
    from neonize.exc import NeonizeError
    from neonize.proto import Neonize_pb2 as pb
    from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e
    from neonize.utils.enum import ChatPresence, ChatPresenceMedia, ReceiptType
    from neonize.utils.jid import build_jid
    from neonize.utils.log import log_whatsmeow
finally:
    os.popen = _os_popen

log = get_logger("atiende.neonize")

SessionEvent = ConnectionEvent | IncomingMessage | IncomingReceipt
ClientFactory = Callable[..., NewAClient]

_RECEIPTS = {
    pb.Receipt.DELIVERED: DeliveryStatus.DELIVERED,
    pb.Receipt.READ: DeliveryStatus.READ,
    pb.Receipt.PLAYED: DeliveryStatus.PLAYED,
}
_BAN_REASONS = {
    1: "sent to too many people",
    2: "blocked by too many users",
    3: "created too many groups",
    4: "sent too many identical messages",
    5: "broadcast list",
}


def store_devices(url: str) -> list[str]:
    """The device JIDs (``user:device@server``) whatsmeow's store at ``url`` holds.

    Opening the store runs whatsmeow's table creation/upgrade (call it under
    ``wa_store.prepare_store``'s lock). Blocking; raises ``SessionStoreError``.
    """
    answer = gocode.GetAllDevices(url.encode(), func_callback_bytes2(log_whatsmeow))
    if isinstance(answer, int):
        answer = ctypes.string_at(answer)
    text = (answer or b"").decode(errors="replace")
    if text.startswith("error:"):
        raise SessionStoreError(explain_store_error(text), raw=text)
    return [entry.split(",", 1)[0] for entry in text.split("|\u0001|") if entry]


def _jid_text(jid: pb.JID) -> str:
    return f"{jid.User}@{jid.Server}" if jid.User else ""


def _device_jid_text(jid: pb.JID) -> str:
    """``user:device@server``: what whatsmeow's store needs to resume this device."""
    if not jid.User:
        return ""
    device = f":{jid.Device}" if jid.Device else ""
    return f"{jid.User}{device}@{jid.Server or 's.whatsapp.net'}"


class EventMapper:
    """Maps whatsmeow protobuf events of one number to our typed events."""

    def __init__(self, account: str, *, default_region: str = "MX") -> None:
        self.account = account
        self._region = default_region

    def address(self, jid: pb.JID, alt: pb.JID | None = None) -> WaAddress:
        """A chat/sender JID (and its alternate) → phone and/or LID."""
        phone = lid = None
        for candidate in (jid, alt):
            if candidate is None or not candidate.User:
                continue
            if candidate.Server == "lid":
                lid = lid or candidate.User
            elif candidate.Server == "s.whatsapp.net":
                with contextlib.suppress(InvalidPhoneNumber):
                    phone = phone or normalize_phone(candidate.User, self._region)
        return WaAddress(phone=phone, lid=lid)

    def message(
        self, event: pb.Message, download: Callable[[], Awaitable[bytes]] | None
    ) -> IncomingMessage | None:
        info = event.Info
        source = info.MessageSource
        if source.IsGroup or source.Chat.Server in ("broadcast", "newsletter"):
            return None  # a customer-service bot answers one-to-one chats only
        if source.IsFromMe:
            peer = self.address(source.Chat, source.RecipientAlt)
        else:
            peer = self.address(source.Chat, source.SenderAlt)
            if peer.phone is None and peer.lid is None:
                peer = self.address(source.Sender, source.SenderAlt)
        kind, text, mime, filename = _content(event.Message)
        return IncomingMessage(
            account=self.account,
            message_id=info.ID,
            peer=peer,
            kind=kind,
            at=datetime.fromtimestamp(info.Timestamp, tz=UTC) if info.Timestamp
            else datetime.now(UTC),
            text=text,
            sender_name=None if source.IsFromMe else (info.Pushname or None),
            from_owner=source.IsFromMe,
            mime_type=mime,
            filename=filename,
            download=download if mime is not None else None,
            raw={
                "wa": {
                    "id": info.ID, "chat": _jid_text(source.Chat),
                    "sender": _jid_text(source.Sender), "type": info.Type,
                    "media_type": info.MediaType, "from_me": source.IsFromMe,
                    "edit": event.IsEdit,
                }
            },
        )

    def receipt(self, event: pb.Receipt) -> IncomingReceipt | None:
        status = _RECEIPTS.get(event.Type)
        if status is None or event.MessageSource.IsFromMe or not event.MessageIDs:
            return None  # our own devices' receipts, retries, server errors
        return IncomingReceipt(
            account=self.account, message_ids=tuple(event.MessageIDs), status=status,
            at=datetime.fromtimestamp(event.Timestamp, tz=UTC) if event.Timestamp else None,
        )

    def connection(self, event: Any) -> ConnectionEvent:
        a = self.account
        simple = _SIMPLE_STATES.get(type(event))
        if simple is not None:
            return ConnectionEvent(a, simple[0], detail=simple[1])
        if isinstance(event, pb.PairStatus):
            if event.Error:
                return ConnectionEvent(a, ConnState.FAILED, detail=f"pairing: {event.Error}")
            return ConnectionEvent(a, ConnState.CONNECTED, detail="paired",
                                   jid=_device_jid_text(event.ID) or None)
        if isinstance(event, pb.LoggedOut):
            reason = pb.ConnectFailureReason.Name(event.Reason) if event.Reason else "LOGGED_OUT"
            return ConnectionEvent(a, ConnState.LOGGED_OUT, detail=reason)
        if isinstance(event, pb.TemporaryBan):
            expire = float(event.Expire or 0)
            return ConnectionEvent(
                a, ConnState.TEMP_BANNED, retry_after=expire or None,
                detail=f"temporary ban: {_BAN_REASONS.get(int(event.Code), int(event.Code))}",
            )
        if isinstance(event, pb.ConnectFailure):
            name = pb.ConnectFailureReason.Name(event.Reason) if event.Reason else "UNKNOWN"
            return ConnectionEvent(a, _FAILURE_STATES.get(name, ConnState.DISCONNECTED),
                                   detail=f"connect failure {name}: {event.Message}")
        if isinstance(event, pb.KeepAliveTimeout):
            return ConnectionEvent(a, ConnState.DISCONNECTED,
                                   detail=f"keepalive timeout x{event.ErrorCount}")
        return ConnectionEvent(a, ConnState.DISCONNECTED, detail=type(event).__name__)


_SIMPLE_STATES: dict[type[Any], tuple[ConnState, str | None]] = {
    pb.Connected: (ConnState.CONNECTED, None),
    pb.KeepAliveRestored: (ConnState.CONNECTED, "keepalive restored"),
    pb.StreamReplaced: (ConnState.STREAM_REPLACED, "another client opened this session"),
    pb.ClientOutdated: (ConnState.FAILED, "client outdated: upgrade neonize"),
    pb.StreamError: (ConnState.DISCONNECTED, "stream error"),
    pb.Disconnected: (ConnState.DISCONNECTED, "disconnected"),
}
_FAILURE_STATES = {
    "LOGGED_OUT": ConnState.LOGGED_OUT,
    "MAIN_DEVICE_GONE": ConnState.LOGGED_OUT,
    "UNKNOWN_LOGOUT": ConnState.LOGGED_OUT,
    "TEMP_BANNED": ConnState.TEMP_BANNED,
    "CLIENT_OUTDATED": ConnState.FAILED,
}


def _content(message: e2e.Message) -> tuple[MessageKind, str | None, str | None, str | None]:
    """(kind, text, media mime type, filename) of a WhatsApp message."""
    if message.HasField("audioMessage"):
        audio = message.audioMessage
        return MessageKind.VOICE, None, audio.mimetype or "audio/ogg; codecs=opus", None
    if message.HasField("imageMessage"):
        image = message.imageMessage
        return MessageKind.IMAGE, image.caption or None, image.mimetype or "image/jpeg", None
    document = None
    if message.HasField("documentMessage"):
        document = message.documentMessage
    elif message.HasField("documentWithCaptionMessage"):
        document = message.documentWithCaptionMessage.message.documentMessage
    if document is not None:
        return (
            MessageKind.DOCUMENT, document.caption or None,
            document.mimetype or "application/octet-stream", document.fileName or None,
        )
    if message.conversation:
        return MessageKind.TEXT, message.conversation, None, None
    if message.HasField("extendedTextMessage") and message.extendedTextMessage.text:
        return MessageKind.TEXT, message.extendedTextMessage.text, None, None
    return MessageKind.UNKNOWN, None, None, None


_CONNECTION_EVENTS: tuple[type[Any], ...] = (
    pb.Connected, pb.PairStatus, pb.LoggedOut, pb.StreamReplaced, pb.TemporaryBan,
    pb.ConnectFailure, pb.ClientOutdated, pb.KeepAliveTimeout, pb.KeepAliveRestored,
    pb.StreamError, pb.Disconnected,
)


class NeonizeSession:
    """One WhatsApp number on neonize: events in (ordered queue), actions out.

    ``client_factory`` builds the ``NewAClient`` (tests pass a subclass whose network
    methods record instead of calling Go; dispatch stays neonize's own).
    """

    def __init__(
        self,
        *,
        account: str,
        store: str,
        session_id: str,
        jid: str | None,
        client_factory: ClientFactory = NewAClient,
        default_region: str = "MX",
    ) -> None:
        self.account = account
        self.events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self._mapper = EventMapper(account, default_region=default_region)
        linked = _parse_jid(jid) if jid else None
        self.client: NewAClient = (
            client_factory(store, jid=linked)
            if linked is not None
            else client_factory(store, uuid=session_id, new_device=True)
        )
        self._task: asyncio.Future[Any] | None = None
        self._stopping = False
        self._register()

    def _register(self) -> None:
        client = self.client
        client.event(pb.Message)(self._on_message)
        client.event(pb.Receipt)(self._on_receipt)
        for event_type in _CONNECTION_EVENTS:
            client.event(event_type)(self._on_connection)
        client.event.qr(self._on_qr)

    async def _on_message(self, _: NewAClient, event: pb.Message) -> None:
        mapped = self._mapper.message(event, self._downloader(event))
        if mapped is not None:
            self.events.put_nowait(mapped)

    async def _on_receipt(self, _: NewAClient, event: pb.Receipt) -> None:
        mapped = self._mapper.receipt(event)
        if mapped is not None:
            self.events.put_nowait(mapped)

    async def _on_qr(self, _: NewAClient, data: bytes) -> None:
        self.events.put_nowait(ConnectionEvent(
            self.account, ConnState.PAIRING, qr=data.decode(errors="replace")))

    async def _on_connection(self, _: NewAClient, event: Any) -> None:
        self.events.put_nowait(self._mapper.connection(event))

    def _downloader(self, event: pb.Message) -> Callable[[], Awaitable[bytes]]:
        async def download() -> bytes:
            try:
                data: bytes = await self.client.download_any(event.Message)
            except NeonizeError as exc:
                raise ChannelError(f"media download failed: {exc}",
                                   channel=WHATSAPP_CHANNEL) from exc
            return data

        return download

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect in the background: neonize's ``connect`` returns the running task at
        once; whatever ends that task (a dial or store error) becomes a ``FAILED`` event."""
        neonize_events.set_event_loop(asyncio.get_running_loop())
        self._stopping = False
        try:
            task = await self.client.connect()
        except NeonizeError as exc:
            raise ChannelError(f"connect failed: {explain_connect_error(str(exc))}",
                               channel=WHATSAPP_CHANNEL) from exc
        if isinstance(task, asyncio.Future):
            self._task = task
            task.add_done_callback(self._connection_ended)

    def _connection_ended(self, task: asyncio.Future[Any]) -> None:
        if self._stopping or task.cancelled():
            return
        error = task.exception()
        detail = (f"connect failed: {explain_connect_error(str(error))}" if error is not None
                  else "the WhatsApp connection ended")
        log.warning("neonize.connection_ended", account=self.account, detail=detail)
        self.events.put_nowait(ConnectionEvent(self.account, ConnState.FAILED, detail=detail))

    async def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(NeonizeError):
            await self.client.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, NeonizeError):
                await self._task

    async def pairing_code(self, phone: str) -> str:
        """A pairing code for ``phone`` (only while the QR is shown, i.e. connected)."""
        try:
            digits = "".join(ch for ch in phone if ch.isdigit())
            code: str = await self.client.PairPhone(digits, True)
        except NeonizeError as exc:
            raise ChannelError(f"pairing code failed: {exc}", channel=WHATSAPP_CHANNEL) from exc
        return code

    # --- actions ----------------------------------------------------------------------

    async def send_text(self, to_phone: str, text: str) -> str:
        response = await self._call("send", self.client.send_message, _phone_jid(to_phone), text)
        return str(response.ID)

    async def send_media(
        self, to_phone: str, kind: MessageKind, data: bytes, *, caption: str | None,
        filename: str | None, mime_type: str | None,
    ) -> str:
        to = _phone_jid(to_phone)
        if kind is MessageKind.VOICE:
            response = await self._call("send voice", self.client.send_audio, to, data, True)
        elif kind is MessageKind.IMAGE:
            response = await self._call("send image", self.client.send_image, to, data,
                                        caption or "")
        elif kind is MessageKind.DOCUMENT:
            response = await self._call(
                "send document", self.client.send_document, to, data, caption=caption or None,
                filename=filename or "documento", mimetype=mime_type)
        else:
            raise ChannelRefused(f"cannot send {kind.value}", channel=WHATSAPP_CHANNEL)
        return str(response.ID)

    async def typing(self, to_phone: str, *, active: bool) -> None:
        state = (ChatPresence.CHAT_PRESENCE_COMPOSING if active
                 else ChatPresence.CHAT_PRESENCE_PAUSED)
        await self._call("presence", self.client.send_chat_presence, _phone_jid(to_phone),
                         state, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT)

    async def mark_read(self, message_id: str, from_phone: str) -> None:
        jid = _phone_jid(from_phone)
        await self._call("mark read", self.client.mark_read, message_id, chat=jid, sender=jid,
                         receipt=ReceiptType.READ)

    async def _call(self, what: str, method: Callable[..., Awaitable[Any]], *args: Any,
                    **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except NeonizeError as exc:
            raise ChannelError(f"{what} failed: {exc}", channel=WHATSAPP_CHANNEL) from exc


def _phone_jid(phone: str) -> pb.JID:
    if phone.startswith("lid:"):  # a hidden-number contact we could not map to a phone
        return _parse_jid(f"{phone.removeprefix('lid:')}@lid")
    return build_jid(phone.lstrip("+"))


def _parse_jid(text: str) -> pb.JID:
    address, _, server = text.partition("@")
    user, _, device = address.partition(":")
    return pb.JID(User=user, Server=server or "s.whatsapp.net", RawAgent=0,
                  Device=int(device or 0), Integrator=0, IsEmpty=False)
