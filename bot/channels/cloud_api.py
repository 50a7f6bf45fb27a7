"""WhatsApp Cloud API channel: sending through Meta's Graph API (the only httpx use for it).

``GraphApi`` is the transport: bearer token, timeouts, bounded retries (tenacity) on
429/5xx and Meta's throughput error codes, honouring ``Retry-After``; every failure
becomes a ``ChannelError`` (``ChannelRateLimited`` / ``ChannelRefused``).
``CloudApiChannel`` is the ``Channel``: it enforces the 24-hour customer-service
window (free text and media refused outside it; an approved template may be sent
instead). Voice notes, images and documents are read from our media store, uploaded
with ``POST /{phone-number-id}/media`` (multipart) and sent by the returned media id;
voice notes that are not OGG/Opus yet are converted first (WhatsApp plays only
OGG/Opus as a voice note).
The webhook side lives in ``bot.channels.cloud_webhook``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
)

from bot.clock import Clock
from bot.errors import (
    AtiendeError,
    ChannelError,
    ChannelRateLimited,
    ChannelRefused,
    OutsideServiceWindow,
)
from bot.logs import get_logger
from bot.messages import Author, MediaRef, MessageKind, OutboundMessage, SendReceipt
from handoff.conversations import Message

CLOUD_CHANNEL = "whatsapp_cloud"
SERVICE_WINDOW = timedelta(hours=24)
# Graph error codes that mean "too fast" whatever the HTTP status says.
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056})
# Graph error codes for "outside the customer-service window".
WINDOW_CODES = frozenset({131047, 131026})

log = get_logger("atiende.cloud_api")


@dataclass(frozen=True, slots=True)
class TemplateRef:
    """An approved WhatsApp message template (name + language code, optional components)."""

    name: str
    language: str = "es_MX"
    components: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What the Graph media endpoint says about an inbound media id."""

    media_id: str
    url: str
    mime_type: str
    sha256: str | None
    size: int | None


class _Transient(ChannelError):
    """Worth retrying right here (429/5xx/network), with an optional server hint."""


class GraphApi:
    """Meta's Graph API for one app: messages and media, with bounded retries."""

    def __init__(
        self,
        *,
        base_url: str,
        access_token: str,
        http: httpx.AsyncClient,
        attempts: int = 4,
        max_wait_seconds: float = 20.0,
        base_wait_seconds: float = 0.5,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = access_token
        self._http = http
        self._attempts = attempts
        self._max_wait = max_wait_seconds
        self._base_wait = base_wait_seconds

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    async def send(self, phone_number_id: str, payload: dict[str, Any]) -> str:
        """POST one message; return its ``wamid``."""
        body = await self._call("POST", f"{self._base}/{phone_number_id}/messages", json=payload)
        try:
            return str(body["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise ChannelError(
                f"Graph answered without a message id: {body!r}"[:300], channel=CLOUD_CHANNEL
            ) from exc

    async def upload_media(
        self, phone_number_id: str, data: bytes, *, mime_type: str, filename: str
    ) -> str:
        """Upload bytes (multipart, ``POST /{phone-number-id}/media``); return the media id.

        The body is rebuilt from ``data`` on every attempt, so retries resend all of it.
        """
        body = await self._call(
            "POST", f"{self._base}/{phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, data, mime_type)},
        )
        media_id = body.get("id")
        if not media_id:
            raise ChannelError(
                f"Graph answered an upload without a media id: {body!r}"[:300],
                channel=CLOUD_CHANNEL,
            )
        return str(media_id)

    async def media_info(self, media_id: str) -> MediaInfo:
        body = await self._call("GET", f"{self._base}/{media_id}")
        try:
            return MediaInfo(
                media_id=media_id, url=str(body["url"]),
                mime_type=str(body.get("mime_type") or "application/octet-stream"),
                sha256=body.get("sha256"),
                size=int(body["file_size"]) if body.get("file_size") is not None else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ChannelError(
                f"Graph media {media_id}: unexpected answer", channel=CLOUD_CHANNEL
            ) from exc

    async def download(self, url: str, *, max_bytes: int) -> AsyncIterator[bytes]:
        """Stream a media URL (bearer token required by Meta); refuse beyond ``max_bytes``."""
        seen = 0
        try:
            async with self._http.stream("GET", url, headers=self._auth) as response:
                if response.status_code != 200:
                    raise ChannelError(
                        f"media download answered {response.status_code}", channel=CLOUD_CHANNEL
                    )
                async for chunk in response.aiter_bytes():
                    seen += len(chunk)
                    if seen > max_bytes:
                        raise ChannelRefused(
                            f"media larger than {max_bytes} bytes", channel=CLOUD_CHANNEL
                        )
                    yield chunk
        except httpx.HTTPError as exc:
            raise ChannelError(f"media download failed: {exc}", channel=CLOUD_CHANNEL) from exc

    async def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(method, url, **kwargs)
        except _Transient as exc:
            cls = ChannelRateLimited if exc.retry_after is not None else ChannelError
            raise cls(str(exc), channel=CLOUD_CHANNEL, retry_after=exc.retry_after) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "retry_after", None)
        backoff = self._base_wait * (2 ** (state.attempt_number - 1))
        wait = float(hinted) if hinted is not None else backoff
        if wait > self._max_wait:
            # The provider wants a longer pause than a request may hold: give up now and
            # let the outbox reschedule the message (nothing is dropped).
            assert exc is not None
            raise ChannelRateLimited(str(exc), channel=CLOUD_CHANNEL, retry_after=wait) from exc
        return wait

    async def _once(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, url, headers=self._auth, **kwargs)
        except httpx.TimeoutException as exc:
            raise _Transient(f"Graph timed out: {exc}", channel=CLOUD_CHANNEL) from exc
        except httpx.TransportError as exc:
            raise _Transient(f"Graph unreachable: {exc}", channel=CLOUD_CHANNEL) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code < 400:
            return body
        found = body.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        code = error.get("code")
        text = f"Graph {response.status_code} code={code}: {error.get('message', response.text)}"
        retry_after = _retry_after(response)
        if response.status_code == 429 or code in RATE_LIMIT_CODES:
            raise _Transient(text[:300], channel=CLOUD_CHANNEL, retry_after=retry_after or 1.0)
        if response.status_code >= 500:
            raise _Transient(text[:300], channel=CLOUD_CHANNEL, retry_after=retry_after)
        if code in WINDOW_CODES:
            raise OutsideServiceWindow(text[:300], channel=CLOUD_CHANNEL, code=code)
        raise ChannelRefused(text[:300], channel=CLOUD_CHANNEL, code=code)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())


class ServiceWindow:
    """The 24-hour customer-service window: open while the customer wrote in the last 24 h."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def last_customer_message(self, conversation_id: uuid.UUID) -> datetime | None:
        async with self._sessions() as session:
            last: datetime | None = (
                await session.execute(
                    select(func.max(Message.created_at)).where(
                        Message.conversation_id == conversation_id,
                        Message.direction == "in",
                        Message.author == Author.CUSTOMER.value,
                    )
                )
            ).scalar_one()
        return last

    async def is_open(self, conversation_id: uuid.UUID) -> bool:
        last = await self.last_customer_message(conversation_id)
        return last is not None and self._clock() - last < SERVICE_WINDOW


class CloudApiChannel:
    """The Cloud API as a ``Channel``: one app, any of its phone numbers (the account)."""

    name = CLOUD_CHANNEL

    def __init__(
        self,
        *,
        graph: GraphApi,
        window: ServiceWindow,
        default_phone_number_id: str,
        media: MediaReader | None = None,
        to_voice: VoiceConverter | None = None,
        media_max_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._graph = graph
        self._window = window
        self._default_number = default_phone_number_id
        self._media = media
        self._to_voice = to_voice
        self._media_max = media_max_bytes

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Send text, media or a template; anything but a template is refused outside the
        24-hour window (the same rule for text and media)."""
        template = _template_of(message)
        if template is None and not await self._window.is_open(message.conversation_id):
            raise OutsideServiceWindow(
                "the customer has not written in 24 hours: free text is not allowed, "
                "send an approved template instead",
                channel=CLOUD_CHANNEL, code="outside_window",
            )
        number = message.account or self._default_number
        if template is None and message.media is not None and message.media.key:
            payload = await self._media_payload(number, message)
        else:
            payload = _payload(message, template)
        wamid = await self._graph.send(number, payload)
        log.info(
            "cloud.sent", outbox_id=str(message.outbox_id), wamid=wamid,
            template=template.name if template else None, type=payload["type"],
        )
        return SendReceipt(provider_message_id=wamid)

    async def _media_payload(self, number: str, message: OutboundMessage) -> dict[str, Any]:
        media = message.media
        assert media is not None and media.key is not None
        kind = message.kind
        if kind not in _MEDIA_TYPES:
            raise ChannelRefused(f"the Cloud API channel cannot send {kind.value} media",
                                 channel=CLOUD_CHANNEL)
        if self._media is None:
            raise ChannelRefused("no media store to read from", channel=CLOUD_CHANNEL)
        data = await self._read(media.key)
        mime = media.mime_type.split(";")[0].strip().lower() or "application/octet-stream"
        filename = media.filename or _default_name(kind, mime)
        if kind is MessageKind.VOICE and mime != "audio/ogg":
            if self._to_voice is None:
                raise ChannelRefused(f"a voice note must be OGG/Opus, not {mime}",
                                     channel=CLOUD_CHANNEL)
            try:
                data = await self._to_voice(data)
            except AtiendeError as exc:
                raise ChannelRefused(f"voice note {media.key}: {exc}",
                                     channel=CLOUD_CHANNEL) from exc
            mime, filename = "audio/ogg", "nota-de-voz.ogg"
        media_id = await self._graph.upload_media(number, data, mime_type=mime,
                                                  filename=filename)
        kind_type = _MEDIA_TYPES[kind]
        body: dict[str, Any] = {"id": media_id}
        if message.text and kind is not MessageKind.VOICE:
            body["caption"] = message.text
        if kind is MessageKind.DOCUMENT:
            body["filename"] = filename
        return {
            "messaging_product": "whatsapp", "recipient_type": "individual",
            "to": message.to_phone.lstrip("+"), "type": kind_type, kind_type: body,
        }

    async def _read(self, key: str) -> bytes:
        assert self._media is not None
        parts: list[bytes] = []
        seen = 0
        try:
            async for chunk in self._media.read(key):
                seen += len(chunk)
                if seen > self._media_max:
                    raise ChannelRefused(f"media {key} is larger than {self._media_max} bytes",
                                         channel=CLOUD_CHANNEL)
                parts.append(chunk)
        except ChannelError:
            raise
        except AtiendeError as exc:
            raise ChannelRefused(f"media {key}: {exc}", channel=CLOUD_CHANNEL) from exc
        return b"".join(parts)


# What each of our kinds is called in a Graph message ("voice" notes are "audio").
_MEDIA_TYPES = {
    MessageKind.VOICE: "audio",
    MessageKind.IMAGE: "image",
    MessageKind.DOCUMENT: "document",
}
_EXTENSIONS = {"audio/ogg": "ogg", "image/jpeg": "jpg", "image/png": "png",
               "application/pdf": "pdf"}


def _default_name(kind: MessageKind, mime: str) -> str:
    stem = {MessageKind.VOICE: "nota-de-voz", MessageKind.IMAGE: "imagen"}.get(kind, "documento")
    return f"{stem}.{_EXTENSIONS.get(mime, mime.rsplit('/', 1)[-1] or 'bin')}"


class MediaReader(Protocol):
    def read(self, key: str) -> AsyncIterator[bytes]: ...


VoiceConverter = Callable[[bytes], Awaitable[bytes]]


def _template_of(message: OutboundMessage) -> TemplateRef | None:
    raw = message.template
    if raw is None:
        return None
    return TemplateRef(
        name=str(raw["name"]), language=str(raw.get("language", "es_MX")),
        components=tuple(raw.get("components", ())),
    )


def _payload(message: OutboundMessage, template: TemplateRef | None) -> dict[str, Any]:
    base: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.to_phone.lstrip("+"),
    }
    if template is not None:
        body: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
        if template.components:
            body["components"] = list(template.components)
        return {**base, "type": "template", "template": body}
    if message.kind is not MessageKind.TEXT or not message.text:
        raise ChannelRefused(
            f"nothing to send in a {message.kind.value} message (no text, media or template)",
            channel=CLOUD_CHANNEL,
        )
    return {**base, "type": "text", "text": {"preview_url": False, "body": message.text}}


class MediaStoreLike(Protocol):
    async def save(
        self, chunks: AsyncIterator[bytes], *, kind: MessageKind, mime_type: str,
        filename: str | None = None,
    ) -> MediaRef: ...


class CloudMediaFetcher:
    """Inbound media: Graph media id → URL → bytes (bearer token) → our media store."""

    def __init__(self, graph: GraphApi, store: MediaStoreLike, *, max_bytes: int) -> None:
        self._graph = graph
        self._store = store
        self._max = max_bytes

    async def __call__(self, media: MediaRef, kind: MessageKind) -> MediaRef:
        if not media.provider_media_id:
            raise ChannelRefused("media without an id", channel=CLOUD_CHANNEL)
        info = await self._graph.media_info(media.provider_media_id)
        saved = await self._store.save(
            self._graph.download(info.url, max_bytes=self._max), kind=kind,
            mime_type=info.mime_type or media.mime_type, filename=media.filename,
        )
        return dataclasses.replace(saved, provider_media_id=media.provider_media_id)
