"""The simulator channel's service: inject a customer message, read what became of it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.channels.simulator import SIMULATOR, SIMULATOR_ACCOUNT
from bot.clock import Clock
from bot.conversation.ingest import Accepted, Ingestor
from bot.errors import InvalidMessage, NotFound
from bot.infra.redis_adapter import EventBus
from bot.logs import get_logger
from bot.media import MediaStore
from bot.messages import InboundMessage, MessageKind
from bot.phones import normalize_phone
from handoff.access import visible_to_agent
from handoff.auth import Principal
from handoff.conversations import Contact, Conversation, Message, contact_key
from handoff.roles import Role

MAX_TEXT = 4096
SESSION_KEY = "sim_session"  # messages.raw: the simulator session that sent it
log = get_logger("atiende.simulator")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the pipeline did with one simulated message (the ``atiende ask --json`` shape)."""

    conversation_id: uuid.UUID
    message_id: uuid.UUID
    status: str
    transcript: str | None
    intent: str | None
    confidence: float | None
    escalated: bool
    owner: str
    replies: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ChatLine:
    id: uuid.UUID
    direction: str
    author: str
    text: str | None
    status: str
    kind: str = "text"


class SimulatorService:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        ingestor: Ingestor,
        events: EventBus,
        clock: Clock,
        default_region: str,
        media: MediaStore | None = None,
    ) -> None:
        self._media = media
        self._sessions = sessions
        self._ingestor = ingestor
        self._events = events
        self._clock = clock
        self._region = default_region

    async def send(
        self, *, phone: str, text: str | None, name: str | None, message_id: str | None,
        session: str | None = None,
    ) -> Accepted:
        """Accept a customer text as if WhatsApp had delivered it (``session``: the
        simulator session sending it, the only one that may read it back besides staff)."""
        if text is None or not text.strip():
            raise InvalidMessage("text must not be empty")
        if len(text) > MAX_TEXT:
            raise InvalidMessage(f"text is longer than {MAX_TEXT} characters")
        message = InboundMessage(
            channel=SIMULATOR,
            account=SIMULATOR_ACCOUNT,
            provider_message_id=message_id or f"sim-{uuid.uuid4()}",
            sender_phone=contact_key(SIMULATOR, normalize_phone(phone, self._region)),
            sender_name=name,
            kind=MessageKind.TEXT,
            text=text,
            received_at=self._clock(),
            raw={SESSION_KEY: session} if session else {},
        )
        return await self._ingestor.accept(message)

    async def send_voice(
        self,
        *,
        phone: str,
        audio: AsyncIterator[bytes],
        mime_type: str,
        filename: str | None,
        name: str | None,
        message_id: str | None,
        session: str | None = None,
    ) -> Accepted:
        """Accept a customer voice note: stored (checked) first, then delivered like text."""
        if self._media is None:
            raise InvalidMessage("this server has no media store")
        # refuse a bad number before storing anything
        sender = contact_key(SIMULATOR, normalize_phone(phone, self._region))
        ref = await self._media.save(
            audio, kind=MessageKind.VOICE, mime_type=mime_type, filename=filename
        )
        message = InboundMessage(
            channel=SIMULATOR,
            account=SIMULATOR_ACCOUNT,
            provider_message_id=message_id or f"sim-{uuid.uuid4()}",
            sender_phone=sender,
            sender_name=name,
            kind=MessageKind.VOICE,
            media=ref,
            received_at=self._clock(),
            raw={SESSION_KEY: session} if session else {},
        )
        assert ref.key is not None
        try:
            accepted = await self._ingestor.accept(message)
        except BaseException:
            await self._media.delete(ref.key)  # nothing stored half-way
            raise
        if accepted.duplicate:
            await self._media.delete(ref.key)  # the first delivery's copy is the one kept
        log.info("simulator.voice", message_id=str(accepted.message_id), media_key=ref.key,
                 size=ref.size, mime_type=ref.mime_type)
        return accepted

    async def outcome(
        self, message_id: uuid.UUID, *, wait: float = 0.0, session: str | None = None,
        viewer: Principal | None = None,
    ) -> Outcome:
        """The outcome; with ``wait``, block up to that many seconds for processing.

        Supervisors and admins read any; an agent those of conversations it may see
        (``handoff.access``) or its own simulator session's; anyone else only its
        simulator ``session``'s. Any other message (a WhatsApp one, another session's,
        another team's) is "not found"."""
        read = functools.partial(self._read, session=session or "", viewer=viewer)
        current = await read(message_id)
        if current.status != "received" or wait <= 0:
            return current
        async with self._events.subscribe(f"processed:{message_id}") as queue:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while (remaining := deadline - loop.time()) > 0:
                current = await read(message_id)
                if current.status != "received":
                    return current
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queue.get(), timeout=min(remaining, 0.5))
        return await read(message_id)

    async def _read(
        self, message_id: uuid.UUID, *, session: str, viewer: Principal | None
    ) -> Outcome:
        query = (
            select(Message, Conversation.owner)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id == message_id, Message.direction == "in")
        )
        if viewer is None or viewer.role is Role.AGENT:
            own = (Conversation.channel == SIMULATOR) & (
                Message.raw[SESSION_KEY].astext == session)
            query = query.where(own if viewer is None else or_(own, visible_to_agent(viewer.id)))
        async with self._sessions() as db:
            row = (await db.execute(query)).one_or_none()
            if row is None:
                raise NotFound(f"message {message_id} not found")
            message, owner = row
            replies = (
                await db.execute(
                    select(Message.text)
                    .where(Message.in_reply_to == message_id)
                    .order_by(Message.reply_seq)
                )
            ).scalars().all()
        return Outcome(
            conversation_id=message.conversation_id,
            message_id=message.id,
            status=message.status,
            transcript=message.transcript,
            intent=message.intent,
            confidence=message.confidence,
            escalated=bool(message.escalated),
            owner=owner,
            replies=[r for r in replies if r],
            sources=list(message.sources or []),
        )

    async def chat(
        self, phone: str, *, after_seq: int = 0, session: str | None = None, staff: bool = False
    ) -> list[tuple[int, ChatLine]]:
        """The simulator conversation of ``phone`` as the customer sees it: for staff, or
        for a simulator session that has written in it (empty for anyone else)."""
        key = contact_key(SIMULATOR, normalize_phone(phone, self._region))
        query = (
            select(Message)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(
                Contact.phone_e164 == key,
                Conversation.channel == SIMULATOR,
                Message.seq > after_seq,
            )
            .order_by(Message.seq)
            .limit(200)
        )
        if not staff:
            sent = aliased(Message)
            mine = select(sent.id).where(
                sent.conversation_id == Conversation.id,
                sent.raw[SESSION_KEY].astext == (session or ""),
            )
            query = query.where(exists(mine))
        async with self._sessions() as db:
            rows = (await db.execute(query)).scalars().all()
        return [
            (m.seq, ChatLine(m.id, m.direction, m.author, m.text or m.transcript, m.status, m.kind))
            for m in rows
        ]
