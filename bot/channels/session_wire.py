"""The pipe between a number's client process (``neonize_host``) and the worker
(``session_process``): one JSON object per line, each way.

Worker → client: ``{"id": n, "op": "send_text", "args": {...}}`` (``op`` "stop" ends it).
Client → worker: ``{"event": {...}}`` (a ``SessionEvent``) or ``{"id": n, "ok": value}`` /
``{"id": n, "error": {"kind": "refused" | "unavailable" | "error", "message": "…"}}``.
Bytes travel as base64 (``"b64"`` fields).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from bot.channels.delivery import DeliveryStatus
from bot.channels.wa_events import (
    ConnectionEvent,
    ConnState,
    IncomingMessage,
    IncomingReceipt,
    MediaDownload,
    WaAddress,
)
from bot.errors import ChannelError, ChannelRefused, ChannelUnavailable
from bot.messages import MessageKind

SessionEvent = ConnectionEvent | IncomingMessage | IncomingReceipt
DownloadFor = Callable[[str], MediaDownload]

# A message line can carry a 16 MB media file as base64.
LINE_LIMIT = 64 * 1024 * 1024


def dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _untime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def encode_event(event: SessionEvent) -> dict[str, Any]:
    if isinstance(event, ConnectionEvent):
        return {"type": "connection", "account": event.account, "state": event.state.value,
                "detail": event.detail, "retry_after": event.retry_after, "qr": event.qr,
                "jid": event.jid}
    if isinstance(event, IncomingReceipt):
        return {"type": "receipt", "account": event.account,
                "message_ids": list(event.message_ids), "status": event.status.value,
                "at": _time(event.at)}
    return {
        "type": "message", "account": event.account, "message_id": event.message_id,
        "phone": event.peer.phone, "lid": event.peer.lid, "kind": event.kind.value,
        "at": _time(event.at), "text": event.text, "sender_name": event.sender_name,
        "from_owner": event.from_owner, "mime_type": event.mime_type,
        "filename": event.filename, "download": event.download is not None, "raw": event.raw,
    }


def decode_event(data: dict[str, Any], download_for: DownloadFor) -> SessionEvent:
    """``download_for(message_id)`` fetches that message's media from the client process."""
    kind = data["type"]
    if kind == "connection":
        return ConnectionEvent(
            data["account"], ConnState(data["state"]), detail=data.get("detail"),
            retry_after=data.get("retry_after"), qr=data.get("qr"), jid=data.get("jid"))
    if kind == "receipt":
        return IncomingReceipt(
            account=data["account"], message_ids=tuple(data["message_ids"]),
            status=DeliveryStatus(data["status"]), at=_untime(data.get("at")))
    at = _untime(data.get("at"))
    assert at is not None
    return IncomingMessage(
        account=data["account"], message_id=data["message_id"],
        peer=WaAddress(phone=data.get("phone"), lid=data.get("lid")),
        kind=MessageKind(data["kind"]), at=at, text=data.get("text"),
        sender_name=data.get("sender_name"), from_owner=bool(data.get("from_owner")),
        mime_type=data.get("mime_type"), filename=data.get("filename"),
        download=download_for(data["message_id"]) if data.get("download") else None,
        raw=data.get("raw") or {},
    )


def encode_error(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, ChannelRefused):
        kind = "refused"
    elif isinstance(exc, ChannelUnavailable):
        kind = "unavailable"
    else:
        kind = "error"
    return {"kind": kind, "message": str(exc)[:2000]}


def decode_error(data: dict[str, Any], channel: str) -> ChannelError:
    message = str(data.get("message") or "the WhatsApp client failed")
    if data.get("kind") == "refused":
        return ChannelRefused(message, channel=channel)
    if data.get("kind") == "unavailable":
        return ChannelUnavailable(message, channel=channel, retry_after=15.0)
    return ChannelError(message, channel=channel)


@dataclass(frozen=True, slots=True)
class HostConfig:
    """What a number's client process needs (sent as its first line; holds the store
    password, so it never goes on a command line)."""

    account: str
    store: str  # lib/pq URL, tagged with the number's application_name
    session_id: str
    jid: str | None
    region: str = "MX"
    verify_device: bool = True  # off only to prove that a Go panic stays in its process
    log_level: str = "WARNING"

    def line(self) -> bytes:
        return dumps({"config": asdict(self)})

    @classmethod
    def parse(cls, line: bytes) -> HostConfig:
        return cls(**json.loads(line)["config"])
