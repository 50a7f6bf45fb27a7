"""Inbound path: persist first (idempotent), with its waiting work in the same transaction."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.conversation.inbound_queue import InboundQueue, enqueue_ctes
from bot.db import AutocommitPool, driver_connection
from bot.logs import get_logger
from bot.messages import Author, InboundMessage
from bot.metrics import Metrics
from handoff.conversations import CONTACTS, CONVERSATIONS, MESSAGES, contact_key
from handoff.ownership import Owner, OwnerEvent, next_owner
from handoff.service import HandoffService

log = get_logger("atiende.ingest")


def _accept_sql() -> str:
    """One statement, atomic on its own: find or create the contact and conversation,
    store the message once per (channel, provider id), and record the conversation's
    waiting work (waking a dispatcher unless one is processing it).

    The contact is key-share locked: while that customer is being erased (bot.privacy
    locks the contact first) the statement waits, then finds no contact with the number
    and starts a fresh one; it never writes into the erased conversation."""
    return f"""
WITH found AS (
    SELECT c.id, c.contact_id
    FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
    WHERE ct.phone_e164 = %(phone)s AND c.channel = %(channel)s AND c.account = %(account)s
    FOR KEY SHARE OF ct
),
new_contact AS (
    INSERT INTO contacts (id, phone_e164, name)
    SELECT %(contact_id)s, %(phone)s, %(name)s WHERE NOT EXISTS (SELECT 1 FROM found)
    ON CONFLICT (phone_e164) DO UPDATE SET phone_e164 = EXCLUDED.phone_e164
    RETURNING id
),
new_conversation AS (
    INSERT INTO conversations (id, contact_id, channel, account, owner, context_started_at)
    SELECT %(conversation_id)s, id, %(channel)s, %(account)s, 'bot', %(received_at)s
    FROM new_contact
    ON CONFLICT ON CONSTRAINT uq_conversation_key DO UPDATE SET channel = EXCLUDED.channel
    RETURNING id
),
conversation AS (
    SELECT id FROM found UNION ALL SELECT id FROM new_conversation
),
named AS (
    UPDATE contacts SET name = %(name)s
    WHERE %(name)s::text IS NOT NULL AND name IS NULL
      AND id = (SELECT contact_id FROM found)
),
message AS (
    INSERT INTO messages (id, conversation_id, direction, author, kind, channel,
                          provider_message_id, text, media, raw, status)
    SELECT %(id)s, conversation.id, 'in', 'customer', %(kind)s, %(channel)s,
           %(provider_message_id)s, %(text)s, %(media)s::jsonb, %(raw)s::jsonb, 'received'
    FROM conversation
    ON CONFLICT (channel, provider_message_id) WHERE provider_message_id IS NOT NULL
    DO NOTHING
    RETURNING id, conversation_id
),
{enqueue_ctes("SELECT conversation_id FROM message")}
SELECT m.id, m.conversation_id, (SELECT count(*) FROM inbound_woken) AS woken
FROM message m
"""


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
        fast: AutocommitPool,
        inbound: InboundQueue,
        metrics: Metrics,
        handoff: HandoffService | None = None,
    ) -> None:
        self._handoff = handoff
        self._sessions = sessions
        self._fast = fast
        self._accept_sql = _accept_sql()
        self._inbound = inbound
        self._metrics = metrics

    async def accept(self, message: InboundMessage) -> Accepted:
        """Persist ``message`` (once per channel + provider id) and record its work atomically."""
        key = contact_key(message.channel, message.sender_phone)
        if key != message.sender_phone:
            message = dataclasses.replace(message, sender_phone=key)
        if not message.from_owner and message.provider_message_id is not None:
            return await self._accept_customer(message)
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
                await self._inbound.enqueue(
                    [conversation_id], connection=await driver_connection(session)
                )
        self._metrics.messages_in.labels(message.channel, message.kind.value).inc()
        if message.from_owner and self._handoff is not None:
            await self._handoff.notify(conversation_id)  # no job runs for it: tell the inbox
        log.info(
            "inbound.accepted", message_id=str(inserted), conversation_id=str(conversation_id),
            channel=message.channel, kind=message.kind.value, from_owner=message.from_owner,
        )
        return Accepted(inserted, conversation_id, duplicate=False)

    async def _accept_customer(self, message: InboundMessage) -> Accepted:
        """The hot path: one round trip (see :func:`_accept_sql`)."""
        params = {
            "phone": message.sender_phone, "channel": message.channel,
            "account": message.account, "name": message.sender_name,
            "contact_id": uuid.uuid4(), "conversation_id": uuid.uuid4(), "id": uuid.uuid4(),
            "received_at": message.received_at, "kind": message.kind.value,
            "provider_message_id": message.provider_message_id, "text": message.text,
            "media": json.dumps(asdict(message.media)) if message.media else None,
            "raw": json.dumps(message.raw, default=str) if message.raw else None,
        }
        async with self._fast.connection() as connection:
            cursor = await connection.execute(self._accept_sql, params)
            row = await cursor.fetchone()
            if row is None:  # stored before: the same delivery again
                cursor = await connection.execute(
                    "SELECT id, conversation_id FROM messages "
                    "WHERE channel = %s AND provider_message_id = %s",
                    (message.channel, message.provider_message_id),
                )
                existing = await cursor.fetchone()
        if row is None:
            assert existing is not None
            self._metrics.duplicates.labels(message.channel).inc()
            log.info(
                "inbound.duplicate", message_id=str(existing[0]),
                provider_message_id=message.provider_message_id,
            )
            return Accepted(existing[0], existing[1], duplicate=True)
        message_id, conversation_id, woken = row
        self._metrics.messages_in.labels(message.channel, message.kind.value).inc()
        log.info(
            "inbound.accepted", message_id=str(message_id), conversation_id=str(conversation_id),
            channel=message.channel, kind=message.kind.value, from_owner=False,
            woke_worker=bool(woken),
        )
        return Accepted(message_id, conversation_id, duplicate=False)

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
                .with_for_update(key_share=True, of=CONTACTS)  # see _accept_sql
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
