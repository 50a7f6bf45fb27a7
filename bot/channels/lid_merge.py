"""One customer, one contact: a WhatsApp LID contact merged into the phone contact.

A customer first seen by their LID (hidden number) is stored under ``lid:<id>``. When a
message later carries both the LID and the phone number, everything the LID contact has
moves to the phone contact in one transaction: conversations (merged with the phone
contact's conversation on the same number, or moved whole), messages, tickets (when both
conversations have an open ticket, the one of the conversation further along the handoff
is kept and the other is closed with outcome ``merged``), notes, labels, campaign
recipients, usage records, the opt-out (either one opted out: opted out) and the name.
Both contact rows are locked first, in id order, so two merges of the same pair never
interleave; a second merge finds nothing left to merge.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.conversation.inbound_queue import enqueue_ctes

LID_PREFIX = "lid:"
# further along the handoff wins when two conversations become one
OWNER_RANK = {"closed": 0, "bot": 1, "queued": 2, "human": 3}
# conversation ids in tables without a foreign key (logs that follow the conversation)
FOLLOWING = ("llm_calls", "transcriptions", "webhook_deliveries")


def lid_key(lid: str) -> str:
    """The ``contacts.phone_e164`` of a customer known only by their LID."""
    return f"{LID_PREFIX}{lid}"[:20]


@dataclass(frozen=True, slots=True)
class Merged:
    """What a merge did (for the log line)."""

    contact_id: uuid.UUID
    removed_contact_id: uuid.UUID | None
    conversations_merged: int
    conversations_moved: int
    tickets_closed: int


async def merge_lid_into_phone(session: AsyncSession, *, lid: str, phone: str) -> Merged | None:
    """Within the caller's transaction: make ``phone``'s contact the only one for
    ``lid``. None when there was nothing to do (already merged, or nothing known)."""
    rows = (await session.execute(text(
        "SELECT id, phone_e164, wa_lid FROM contacts WHERE phone_e164 IN (:lid_key, :phone) "
        "ORDER BY id FOR UPDATE"), {"lid_key": lid_key(lid), "phone": phone})).all()
    by_key = {r.phone_e164: r for r in rows}
    person, hidden = by_key.get(phone), by_key.get(lid_key(lid))
    if hidden is None:
        if person is None or person.wa_lid is not None:
            return None
        await session.execute(text(
            "UPDATE contacts SET wa_lid = :lid WHERE id = :id "
            "AND NOT EXISTS (SELECT 1 FROM contacts WHERE wa_lid = :lid)"),
            {"lid": lid, "id": person.id})
        return None
    if person is None:  # only the LID contact: it simply learns its number
        await session.execute(text(
            "UPDATE contacts SET phone_e164 = :phone, wa_lid = :lid WHERE id = :id"),
            {"phone": phone, "lid": lid, "id": hidden.id})
        return Merged(hidden.id, None, 0, 0, 0)
    merged = moved = closed = 0
    conversations = (await session.execute(text(
        "SELECT id, channel, account FROM conversations WHERE contact_id = :c "
        "ORDER BY id FOR UPDATE"), {"c": hidden.id})).all()
    for conversation in conversations:
        target = (await session.execute(text(
            "SELECT id FROM conversations WHERE contact_id = :c AND channel = :ch "
            "AND account = :acc FOR UPDATE"),
            {"c": person.id, "ch": conversation.channel, "acc": conversation.account},
        )).scalar_one_or_none()
        if target is None:
            await session.execute(text(
                "UPDATE conversations SET contact_id = :p WHERE id = :id"),
                {"p": person.id, "id": conversation.id})
            moved += 1
        else:
            closed += await _merge_conversation(session, source=conversation.id, target=target)
            merged += 1
    await _merge_contact(session, source=hidden.id, target=person.id, lid=lid)
    return Merged(person.id, hidden.id, merged, moved, closed)


async def _merge_conversation(
    session: AsyncSession, *, source: uuid.UUID, target: uuid.UUID
) -> int:
    """Everything of ``source`` into ``target``; returns the tickets closed as merged."""
    ids = {"s": source, "t": target}
    states = {r.id: r for r in (await session.execute(text(
        "SELECT id, owner, owner_reason, owner_changed_at, assigned_agent_id "
        "FROM conversations WHERE id IN (:s, :t)"), ids)).all()}
    source_wins = OWNER_RANK[states[source].owner] > OWNER_RANK[states[target].owner]
    loser = target if source_wins else source
    # two open tickets cannot both stay open on one conversation: keep the winner's
    closed = (await session.execute(text(
        "UPDATE handoff_tickets SET closed_at = now(), outcome = 'merged' "
        "WHERE conversation_id = :loser AND closed_at IS NULL "
        "AND EXISTS (SELECT 1 FROM handoff_tickets WHERE conversation_id = :winner "
        "AND closed_at IS NULL) RETURNING id"),
        {"loser": loser, "winner": source if source_wins else target})).all()
    for table in ("messages", "handoff_tickets", "conversation_notes", "campaign_recipients",
                  *FOLLOWING):
        await session.execute(text(
            f"UPDATE {table} SET conversation_id = :t WHERE conversation_id = :s"), ids)
    await session.execute(text(
        "INSERT INTO conversation_labels (conversation_id, label) SELECT :t, label "
        "FROM conversation_labels WHERE conversation_id = :s ON CONFLICT DO NOTHING"), ids)
    if source_wins:
        won = states[source]
        await session.execute(text(
            "UPDATE conversations SET owner = :owner, owner_reason = :reason, "
            "owner_changed_at = :changed, assigned_agent_id = :agent WHERE id = :t"),
            {"owner": won.owner, "reason": won.owner_reason, "changed": won.owner_changed_at,
             "agent": won.assigned_agent_id, "t": target})
    await session.execute(text(
        "UPDATE conversations t SET "
        "last_inbound_at = GREATEST(t.last_inbound_at, s.last_inbound_at), "
        "last_message_at = GREATEST(t.last_message_at, s.last_message_at), "
        "context_started_at = LEAST(t.context_started_at, s.context_started_at) "
        "FROM conversations s WHERE t.id = :t AND s.id = :s"), ids)
    # messages still waiting move with their conversation's work (the source's row goes
    # with it when the conversation is deleted below)
    waiting = (await session.execute(text(
        "SELECT EXISTS (SELECT 1 FROM messages WHERE conversation_id = :t "
        "AND direction = 'in' AND status = 'received')"), ids)).scalar_one()
    if waiting:
        await session.execute(text(
            f"WITH {enqueue_ctes('SELECT CAST(:t AS uuid)')} SELECT count(*) FROM inbound_woken"
        ), ids)
    await session.execute(text("DELETE FROM conversations WHERE id = :s"), ids)
    return len(closed)


async def _merge_contact(
    session: AsyncSession, *, source: uuid.UUID, target: uuid.UUID, lid: str
) -> None:
    ids = {"s": source, "t": target, "lid": lid}
    await session.execute(text(
        "UPDATE campaign_recipients SET contact_id = :t WHERE contact_id = :s"), ids)
    await session.execute(text(
        "UPDATE contacts t SET opted_out = t.opted_out OR s.opted_out, "
        "name = COALESCE(t.name, s.name) FROM contacts s WHERE t.id = :t AND s.id = :s"), ids)
    await session.execute(text("DELETE FROM contacts WHERE id = :s"), ids)
    await session.execute(text(
        "UPDATE contacts SET wa_lid = :lid WHERE id = :t "
        "AND NOT EXISTS (SELECT 1 FROM contacts WHERE wa_lid = :lid AND id <> :t)"), ids)
