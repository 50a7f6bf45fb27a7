"""Inbound path: persist first (idempotent), then a durable job in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import driver_connection
from bot.jobs import JobQueue
from bot.logs import get_logger
from bot.messages import Author, InboundMessage
from bot.metrics import Metrics
from handoff.ownership import Owner, OwnerEvent, next_owner
from handoff.records import CONTACTS, CONVERSATIONS, MESSAGES
from handoff.service import HandoffService

log = get_logger("atiende.ingest")



@dataclass(frozen=True, slots=True)
class Accepted:
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    duplicate: bool


class Ingestor:
    """Stores each inbound message once and queues its processing."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        jobs: JobQueue,
        metrics: Metrics,
        handoff: HandoffService | None = None,
    ) -> None:
        self._handoff = handoff
        self._sessions = sessions
        self._jobs = jobs
        self._metrics = metrics

    async def accept(self, message: InboundMessage) -> Accepted:
        """Persist ``message`` (once per channel + provider id) and defer its job atomically."""
        async with self._sessions() as session, session.begin():
            conversation_id = await self._conversation_for(session, message)
            values = _row(message, conversation_id)
            inserted = (
                await session.execute(
                    insert(MESSAGES)
                    .values(**values)
                    .on_conflict_do_nothing(
                        index_elements=["channel", "provider_message_id"],
                        index_where=MESSAGES.c.provider_message_id.is_not(None),
                    )
                    .returning(MESSAGES.c.id)
                )
            ).scalar_one_or_none()
            if inserted is None:
                existing = (
                    await session.execute(
                        select(MESSAGES.c.id, MESSAGES.c.conversation_id).where(
                            MESSAGES.c.channel == message.channel,
                            MESSAGES.c.provider_message_id == message.provider_message_id,
                        )
                    )
                ).one()
                self._metrics.duplicates.labels(message.channel).inc()
                log.info(
                    "inbound.duplicate", message_id=str(existing.id),
                    provider_message_id=message.provider_message_id,
                )
                return Accepted(existing.id, existing.conversation_id, duplicate=True)
            if message.from_owner:
                await self._owner_typed(session, conversation_id)
            else:
                await self._jobs.defer_process(
                    conversation_id, connection=await driver_connection(session)
                )
        self._metrics.messages_in.labels(message.channel, message.kind.value).inc()
        if message.from_owner and self._handoff is not None:
            await self._handoff.notify(conversation_id)  # no job runs for it: tell the inbox
        log.info(
            "inbound.accepted", message_id=str(inserted), conversation_id=str(conversation_id),
            channel=message.channel, kind=message.kind.value, from_owner=message.from_owner,
        )
        return Accepted(inserted, conversation_id, duplicate=False)

    async def _conversation_for(self, session: AsyncSession, message: InboundMessage) -> uuid.UUID:
        found = (
            await session.execute(
                select(CONVERSATIONS.c.id, CONTACTS.c.name)
                .join(CONTACTS, CONTACTS.c.id == CONVERSATIONS.c.contact_id)
                .where(
                    CONTACTS.c.phone_e164 == message.sender_phone,
                    CONVERSATIONS.c.channel == message.channel,
                    CONVERSATIONS.c.account == message.account,
                )
            )
        ).one_or_none()
        if found is not None:
            if message.sender_name and not message.from_owner and found.name is None:
                await session.execute(
                    update(CONTACTS)
                    .where(CONTACTS.c.phone_e164 == message.sender_phone)
                    .values(name=message.sender_name)
                )
            existing_id: uuid.UUID = found.id
            return existing_id
        name = None if message.from_owner else message.sender_name
        contact_id = (
            await session.execute(
                insert(CONTACTS)
                .values(id=uuid.uuid4(), phone_e164=message.sender_phone, name=name)
                .on_conflict_do_update(
                    index_elements=["phone_e164"],
                    set_={"phone_e164": message.sender_phone},
                )
                .returning(CONTACTS.c.id)
            )
        ).scalar_one()
        conversation_id: uuid.UUID = (
            await session.execute(
                insert(CONVERSATIONS)
                .values(
                    id=uuid.uuid4(), contact_id=contact_id, channel=message.channel,
                    account=message.account, owner=Owner.BOT.value,
                    context_started_at=message.received_at,
                )
                .on_conflict_do_update(
                    constraint="uq_conversation_key", set_={"channel": message.channel}
                )
                .returning(CONVERSATIONS.c.id)
            )
        ).scalar_one()
        return conversation_id

    async def _owner_typed(self, session: AsyncSession, conversation_id: uuid.UUID) -> None:
        """A message typed on the business phone: a human has taken the conversation."""
        if self._handoff is not None:
            await self._handoff.takeover_in(session, conversation_id)
            return
        current = (
            await session.execute(
                select(CONVERSATIONS.c.owner)
                .where(CONVERSATIONS.c.id == conversation_id)
                .with_for_update()
            )
        ).scalar_one()
        new = next_owner(Owner(current), OwnerEvent.TAKEOVER)
        await session.execute(
            update(CONVERSATIONS)
            .where(CONVERSATIONS.c.id == conversation_id)
            .values(owner=new.value, owner_reason="owner_phone")
        )


def _row(message: InboundMessage, conversation_id: uuid.UUID) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "conversation_id": conversation_id,
        "direction": "out" if message.from_owner else "in",
        "author": Author.OWNER_PHONE.value if message.from_owner else Author.CUSTOMER.value,
        "kind": message.kind.value,
        "channel": message.channel,
        "provider_message_id": message.provider_message_id,
        "text": message.text,
        "media": asdict(message.media) if message.media else None,
        "raw": message.raw or None,
        "status": "sent" if message.from_owner else "received",
    }
