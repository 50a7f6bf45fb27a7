"""One customer, one contact: the LID contact merged into the phone contact, in both
orders, with an open ticket on each side; atomically, and never twice."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from bot.channels.wa_events import IncomingMessage, WaAddress
from bot.channels.whatsapp import LidDirectory, WhatsAppInbound
from bot.messages import MessageKind
from bot.wiring.runtime import Runtime

ACCOUNT = "5215500000001"
OPEN_TICKETS = "SELECT count(*) FROM handoff_tickets WHERE closed_at IS NULL"
LID = "987654321012345"
PHONE = "+525512345678"


def inbound(runtime: Runtime) -> WhatsAppInbound:
    return WhatsAppInbound(ingestor=runtime.ingestor, receipts=runtime.receipts,
                           lids=LidDirectory(runtime.sessions), media=runtime.media)


async def say(runtime: Runtime, body: str, *, phone: str | None, lid: str | None) -> None:
    """A customer message as the number receives it, then wait until it is decided."""
    accepted = await inbound(runtime).message(IncomingMessage(
        account=ACCOUNT, message_id=f"3EB0{uuid.uuid4().hex[:12].upper()}",
        peer=WaAddress(phone=phone, lid=lid), kind=MessageKind.TEXT, at=runtime.clock(),
        text=body, sender_name="Lupita"))
    for _ in range(200):
        if await scalar(runtime, "SELECT status FROM messages WHERE id = :id",
                        id=accepted.message_id) != "received":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{body!r} was never processed")


async def scalar(runtime: Runtime, sql: str, **params: Any) -> Any:
    async with runtime.sessions() as s:
        return (await s.execute(text(sql), params)).scalar()


async def rows(runtime: Runtime, sql: str, **params: Any) -> list[Any]:
    async with runtime.sessions() as s:
        return list((await s.execute(text(sql), params)).all())


async def lid_side(runtime: Runtime) -> None:
    """Known only by the LID: opts out of campaigns, then asks for a person."""
    await say(runtime, "BAJA", phone=None, lid=LID)
    await say(runtime, "quiero hablar con un asesor", phone=None, lid=LID)
    conversation = await scalar(
        runtime, "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id "
        "WHERE k.phone_e164 = :p", p=f"lid:{LID}")
    async with runtime.sessions() as s, s.begin():
        await s.execute(text("INSERT INTO conversation_labels VALUES (:c, 'vip')"),
                        {"c": conversation})


async def phone_side(runtime: Runtime) -> None:
    """Known by the phone (an older chat): also asks for a person."""
    await say(runtime, "hola", phone=PHONE, lid=None)
    await say(runtime, "necesito un asesor por favor", phone=PHONE, lid=None)


@pytest.mark.parametrize("first", ["lid", "phone"])
async def test_lid_contact_merged_into_phone_contact(runtime: Runtime, first: str) -> None:
    sides = [lid_side, phone_side] if first == "lid" else [phone_side, lid_side]
    for side in sides:
        await side(runtime)
    assert await scalar(runtime, "SELECT count(*) FROM contacts") == 2
    assert await scalar(runtime, OPEN_TICKETS) == 2
    before = await scalar(runtime, "SELECT count(*) FROM messages")

    # a message that carries both: the number of the LID is known now
    await say(runtime, "sigo esperando", phone=PHONE, lid=LID)

    contacts = await rows(runtime, "SELECT phone_e164, wa_lid, opted_out, name FROM contacts")
    assert [(c.phone_e164, c.wa_lid, c.opted_out) for c in contacts] == [(PHONE, LID, True)]
    conversations = await rows(runtime, "SELECT id, owner FROM conversations")
    assert len(conversations) == 1 and conversations[0].owner == "queued"
    conversation = conversations[0].id
    assert await scalar(runtime, "SELECT count(*) FROM messages WHERE conversation_id = :c",
                        c=conversation) == await scalar(runtime, "SELECT count(*) FROM messages")
    assert await scalar(runtime, "SELECT count(*) FROM messages") >= before + 1
    tickets = await rows(runtime, "SELECT closed_at, outcome FROM handoff_tickets "
                         "WHERE conversation_id = :c ORDER BY opened_at", c=conversation)
    assert len(tickets) == 2
    assert sorted((t.closed_at is None, t.outcome) for t in tickets) == [
        (False, "merged"), (True, None)]
    assert await scalar(runtime, "SELECT label FROM conversation_labels") == "vip"
    texts = [r.text for r in await rows(
        runtime, "SELECT text FROM messages WHERE direction = 'in' ORDER BY seq")]
    assert {"BAJA", "hola", "sigo esperando"} <= set(texts)

    # nothing merged twice: the same pair again changes nothing
    assert await LidDirectory(runtime.sessions).remember(LID, PHONE) is None
    assert await scalar(runtime, "SELECT count(*) FROM contacts") == 1
    # later LID-only messages land in the same conversation
    await say(runtime, "¿hola?", phone=None, lid=LID)
    assert await scalar(runtime, "SELECT count(DISTINCT conversation_id) FROM messages") == 1


async def test_concurrent_merges_of_one_pair_merge_once(runtime: Runtime) -> None:
    await lid_side(runtime)
    await phone_side(runtime)
    lids = LidDirectory(runtime.sessions)
    results = await asyncio.gather(*[lids.remember(LID, PHONE) for _ in range(4)])
    assert sum(r is not None for r in results) == 1
    assert await scalar(runtime, "SELECT count(*) FROM contacts") == 1
    assert await scalar(runtime, "SELECT count(*) FROM conversations") == 1
    assert await scalar(runtime, OPEN_TICKETS) == 1


async def test_a_lid_contact_alone_learns_its_number(runtime: Runtime) -> None:
    await say(runtime, "hola", phone=None, lid=LID)
    merged = await LidDirectory(runtime.sessions).remember(LID, PHONE)
    assert merged is not None and merged.removed_contact_id is None
    assert [tuple(r) for r in await rows(runtime, "SELECT phone_e164, wa_lid FROM contacts")] == [
        (PHONE, LID)]
