"""Offline neonize: a NewAClient whose network calls record instead of reaching Go, and
helpers that feed hand-built protobuf events through neonize's own dispatch path
(``client.event.execute``, the exact callback the Go side calls).

``connect`` behaves like the real one (measured with neonize 0.5.2 offline): it returns
the running connection task at once and never raises; a dial or store failure ends that
task ~50 ms later with ``NeonizeError``; ``stop`` ends the task without error.
"""

from __future__ import annotations

import asyncio
import ctypes
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from google.protobuf.message import Message as ProtoMessage
from neonize.aioze.client import NewAClient
from neonize.events import EVENT_TO_INT
from neonize.exc import NeonizeError
from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e

from bot.channels.neonize_adapter import NeonizeSession
from bot.channels.numbers import NumberRecord
from bot.channels.supervisor import Session
from bot.wiring.runtime import Runtime
from handoff.roles import Role

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
        self.connect_error: str | None = None  # set: the connection task fails with it
        self._stopped = asyncio.Event()

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))

    async def connect(self, proxy_settings: Any = None) -> Any:  # type: ignore[override]
        self._record("connect")
        self.connect_task = asyncio.get_running_loop().create_task(self._run())
        return self.connect_task

    async def _run(self) -> None:
        if self.connect_error is not None:
            await asyncio.sleep(0.05)  # the real dial fails about this much later
            raise NeonizeError(self.connect_error)
        await self._stopped.wait()

    async def stop(self) -> None:
        self._record("stop")
        self._stopped.set()

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


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


# --- sessions for a runtime: real NeonizeSessions on recording clients ---------------------


def offline_session(account: str = BUSINESS, jid_text: str | None = None) -> NeonizeSession:
    return NeonizeSession(account=account, store="postgres://u@/db?host=/tmp&sslmode=disable",
                          session_id=f"atiende-{account}", jid=jid_text,
                          client_factory=RecordingClient)


def client_of(session: NeonizeSession) -> RecordingClient:
    assert isinstance(session.client, RecordingClient)
    return session.client



class Sessions:
    """Session factory for the runtime: real NeonizeSessions on recording clients."""

    def __init__(self) -> None:
        self.made: list[NeonizeSession] = []
        self.fail_connect: set[str] = set()

    def __call__(self, record: NumberRecord) -> Session:
        session = offline_session(record.account, record.jid)
        if record.account in self.fail_connect:
            client_of(session).connect_error = DIAL_ERROR
        self.made.append(session)
        return session

    def latest(self, account: str = BUSINESS) -> NeonizeSession:
        return [s for s in self.made if s.account == account][-1]


# what the real library's connection task fails with offline (neonize 0.5.2)
DIAL_ERROR = ("failed to dial whatsapp web websocket: failed to WebSocket dial: failed to send "
              "handshake request: Get \"https://web.whatsapp.com/ws/chat\": dial tcp: lookup "
              "web.whatsapp.com: no such host")



async def number_state(rt: Runtime, account: str = BUSINESS) -> NumberRecord:
    record = await rt.whatsapp.book.get(account)
    assert record is not None
    return record


async def linked(rt: Runtime, sessions: Sessions, account: str = BUSINESS) -> NeonizeSession:
    await rt.whatsapp.book.add(account, "Ventas")
    await rt.whatsapp.book.request_link(account, pairing_phone=None)

    async def started() -> bool:
        return any(s.account == account for s in sessions.made)

    await until(started)
    session = sessions.latest(account)
    feed_qr(session.client, "2@abc,def,ghi")

    async def pairing() -> bool:
        return (await number_state(rt, account)).state == "pairing"

    await until(pairing)
    assert (await number_state(rt, account)).qr == "2@abc,def,ghi"
    device = pb.JID(User=account.lstrip("+"), Server="s.whatsapp.net", Device=4, RawAgent=0,
                    Integrator=0, IsEmpty=False)
    feed(session.client, pb.PairStatus(ID=device, BusinessName="Seguros", Platform="android"))

    async def connected() -> bool:
        return (await number_state(rt, account)).state == "connected"

    await until(connected)
    return session


async def login(rt: Runtime, client: httpx.AsyncClient, role: str) -> dict[str, str]:
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.mx"
    await rt.auth.create_user(email=email, name=role, role=Role(role), password="contraseña-123")
    r = await client.post("/api/v1/auth/login",
                          json={"email": email, "password": "contraseña-123"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
