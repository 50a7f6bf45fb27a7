"""Offline neonize: a NewAClient whose network calls record instead of reaching Go, and
helpers that feed hand-built protobuf events through neonize's own dispatch path
(``client.event.execute``, the exact callback the Go side calls)."""

from __future__ import annotations

import asyncio
import ctypes
from typing import Any

from google.protobuf.message import Message as ProtoMessage
from neonize.aioze.client import NewAClient
from neonize.events import EVENT_TO_INT
from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e

BUSINESS = "+525511110000"
CUSTOMER_JID = "5215512345678"


class RecordingClient(NewAClient):
    """Every Go-backed method used by the adapter records its call instead."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stop_finalizer.detach()  # never call Go's Stop on a client that never ran
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.media: bytes | Exception = b"OggS fake voice note"
        self.counter = 0
        self.init_args = (args, kwargs)

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))

    async def connect(self, proxy_settings: Any = None) -> Any:  # type: ignore[override]
        self._record("connect")
        return None

    async def stop(self) -> None:
        self._record("stop")

    async def send_message(self, to: Any, message: Any, *a: Any, **k: Any) -> Any:  # type: ignore[override]
        self._record("send_message", to, message)
        self.counter += 1
        return pb.SendResponse(ID=f"3EB0OUT{self.counter}")

    async def send_image(self, to: Any, file: Any, caption: Any = None, *a: Any, **k: Any) -> Any:  # type: ignore[override]
        self._record("send_image", to, file, caption)
        self.counter += 1
        return pb.SendResponse(ID=f"3EB0OUT{self.counter}")

    async def send_audio(self, to: Any, file: Any, ptt: bool = False, *a: Any, **k: Any) -> Any:  # type: ignore[override]
        self._record("send_audio", to, file, ptt)
        self.counter += 1
        return pb.SendResponse(ID=f"3EB0OUT{self.counter}")

    async def send_document(self, to: Any, file: Any, *a: Any, **k: Any) -> Any:  # type: ignore[override]
        self._record("send_document", to, file, **k)
        self.counter += 1
        return pb.SendResponse(ID=f"3EB0OUT{self.counter}")

    async def send_chat_presence(self, jid: Any, state: Any, media: Any) -> None:  # type: ignore[override]
        self._record("send_chat_presence", jid, state, media)

    async def mark_read(self, *ids: str, **kwargs: Any) -> None:  # type: ignore[override]
        self._record("mark_read", *ids, **kwargs)

    async def download_any(self, message: Any, path: Any = None) -> Any:  # type: ignore[override]
        self._record("download_any", message)
        if isinstance(self.media, Exception):
            raise self.media
        return self.media

    async def PairPhone(self, phone: str, show_push_notification: bool, *a: Any, **k: Any) -> str:  # type: ignore[override]  # noqa: N802
        self._record("PairPhone", phone)
        return "ABCD-EFGH"


def feed(client: NewAClient, event: ProtoMessage) -> None:
    """Deliver ``event`` exactly as the Go side does: serialized bytes + event code."""
    data = event.SerializePartialToString()
    buffer = ctypes.create_string_buffer(data, len(data))
    client.event.execute(0, ctypes.addressof(buffer), len(data), EVENT_TO_INT[type(event)])


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def jid(user: str, server: str = "s.whatsapp.net") -> pb.JID:
    return pb.JID(User=user, Server=server, RawAgent=0, Device=0, Integrator=0, IsEmpty=False)


def message_event(
    wamid: str, content: e2e.Message, *, chat: pb.JID | None = None, from_me: bool = False,
    sender: pb.JID | None = None, sender_alt: pb.JID | None = None, pushname: str = "Lupita",
    media_type: str = "",
) -> pb.Message:
    chat = chat or jid(CUSTOMER_JID)
    source = pb.MessageSource(
        Chat=chat, Sender=sender or (jid("5215511110000") if from_me else chat),
        IsFromMe=from_me, IsGroup=False,
    )
    if sender_alt is not None:
        source.SenderAlt.CopyFrom(sender_alt)
        source.AddressingMode = pb.AddressingMode.Value("LID")
    info = pb.MessageInfo(MessageSource=source, ID=wamid, Type="text", Pushname=pushname,
                          Timestamp=1763780000, MediaType=media_type)
    return pb.Message(Info=info, Message=content)


def text(body: str) -> e2e.Message:
    return e2e.Message(conversation=body)


def voice() -> e2e.Message:
    return e2e.Message(audioMessage=e2e.AudioMessage(
        mimetype="audio/ogg; codecs=opus", PTT=True, seconds=4))


def image(caption: str, mimetype: str = "image/jpeg") -> e2e.Message:
    return e2e.Message(imageMessage=e2e.ImageMessage(mimetype=mimetype, caption=caption))


def receipt(ids: list[str], kind: str) -> pb.Receipt:
    return pb.Receipt(
        MessageSource=pb.MessageSource(Chat=jid(CUSTOMER_JID), Sender=jid(CUSTOMER_JID),
                                       IsFromMe=False, IsGroup=False),
        MessageIDs=ids, Timestamp=1763780100, Type=pb.Receipt.ReceiptType.Value(kind),
    )


def feed_qr(client: NewAClient, code: str) -> None:
    """Deliver a QR as the Go side does: neonize's private QR callback with a C string."""
    buffer = ctypes.create_string_buffer(code.encode())
    client._NewAClient__onQr(0, ctypes.addressof(buffer))  # type: ignore[attr-defined]
