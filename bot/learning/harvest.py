"""Where suggestions come from: resolved ``no_answer`` handoffs, and replies agents mark.

A handoff the bot made because the knowledge base had no answer, once an agent resolved
it, gives one item: the customer's message that was handed over, and the agent replies
sent before it was resolved. Every text is masked here, before it is stored
(``knowledge.masking``): the customer's and the agents' names are known, and contact
data the knowledge base publishes stays. Replies that say nothing ("ok", "👍",
"¿algo más?") are left out; a handoff with no reply left, or no question, gives nothing
(recorded in ``kb_harvested_tickets`` with the reason, so it is looked at once).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.logs import get_logger
from handoff.access import require_visible
from handoff.auth import Principal
from handoff.conversations import Contact, Conversation, Message
from handoff.errors import ConversationNotFound, InvalidInput, NotAllowed
from handoff.tables import User
from knowledge.errors import KnowledgeError
from knowledge.masking import Masked, MaskItem, PublicData, mask
from knowledge.models import Article, HarvestedTicket
from knowledge.suggestion_text import informative_words, substantive
from knowledge.suggestions import NewItem, SuggestionStore

log = get_logger("atiende.learning")

HUMAN_AUTHORS = ("agent", "owner_phone")

_DUE = text(
    "SELECT t.id, t.conversation_id, t.closed_at, c.contact_id FROM handoff_tickets t "
    "JOIN conversations c ON c.id = t.conversation_id "
    "WHERE t.reason = 'no_answer' AND t.outcome = 'resolved' AND t.closed_at IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM kb_harvested_tickets h WHERE h.ticket_id = t.id) "
    "ORDER BY t.closed_at LIMIT :limit"
)
# the message handed over: the newest escalated one before the handoff ended, after any
# earlier resolved handoff of the same conversation
_QUESTION = text(
    "SELECT m.id, m.seq, coalesce(nullif(m.transcript, ''), m.text) AS body, m.created_at "
    "FROM messages m WHERE m.conversation_id = :conversation AND m.direction = 'in' "
    "AND m.escalated AND m.created_at <= :closed AND m.created_at > coalesce(("
    "SELECT max(t.closed_at) FROM handoff_tickets t WHERE t.conversation_id = :conversation "
    "AND t.closed_at < :closed), '-infinity') ORDER BY m.seq DESC LIMIT 1"
)


@dataclass(frozen=True, slots=True)
class Source:
    id: uuid.UUID
    body: str
    author_id: uuid.UUID | None = None


class Harvester:
    """Turns resolved handoffs and marked replies into masked suggestion items."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 suggestions: SuggestionStore) -> None:
        self._sessions = sessions
        self._suggestions = suggestions

    async def harvest(self, *, limit: int = 100) -> int:
        """Look at resolved ``no_answer`` handoffs not seen yet; returns the items filed."""
        async with self._sessions() as session:
            due = (await session.execute(_DUE, {"limit": limit})).all()
            if not due:
                return 0
            public = await public_data(session)
        filed = 0
        for ticket in due:
            try:
                filed += await self._one(ticket, public)
            except KnowledgeError as exc:  # the embedding model failed: try again next time
                log.warning("suggestions.harvest_failed", ticket_id=str(ticket.id),
                            conversation_id=str(ticket.conversation_id), error=str(exc))
        return filed

    async def _one(self, ticket: Any, public: PublicData) -> int:
        async with self._sessions() as session:
            question = (await session.execute(_QUESTION, {
                "conversation": ticket.conversation_id, "closed": ticket.closed_at})).first()
            replies: list[Source] = []
            if question is not None:
                replies = await _human_replies(session, ticket.conversation_id,
                                               after_seq=question.seq, until=ticket.closed_at)
            names = await _names(session, ticket.contact_id, [r.author_id for r in replies])
        outcome, item = _item(ticket, question, replies, names, public)
        suggestion = await self._suggestions.add(item) if item is not None else None
        async with self._sessions.begin() as session:
            await session.execute(insert(HarvestedTicket).values(
                ticket_id=ticket.id, outcome=outcome).on_conflict_do_nothing())
        log.info("suggestions.harvested", ticket_id=str(ticket.id),
                 conversation_id=str(ticket.conversation_id), outcome=outcome,
                 suggestion_id=str(suggestion) if suggestion else None)
        return 1 if suggestion else 0

    async def mark_reply(self, actor: Principal, conversation_id: uuid.UUID,
                         message_id: uuid.UUID) -> uuid.UUID:
        """An agent's own reply, with the customer question before it, as an item."""
        async with self._sessions() as session:
            conv = await session.get(Conversation, conversation_id)
            if conv is None:
                raise ConversationNotFound()
            await require_visible(session, actor, conv)
            reply = await session.get(Message, message_id)
            if reply is None or reply.conversation_id != conversation_id:
                raise InvalidInput("unknown_message", "no such message in this conversation")
            if reply.direction != "out" or reply.author not in HUMAN_AUTHORS \
                    or reply.author_id != actor.id:
                raise NotAllowed("not_your_reply", "only your own replies to customers can "
                                 "be added to the knowledge base")
            question = await _question_before(session, conversation_id, reply.seq)
            names = await _names(session, conv.contact_id, [actor.id])
            public = await public_data(session)
        said = mask(reply.text or "", names=names, public=public)
        if not substantive(said.text):
            raise InvalidInput("trivial_reply", "this reply says too little to teach the bot "
                               "(like 'ok' or an emoji); choose one that answers the question")
        if question is None:
            raise InvalidInput("no_question", "no customer question before this reply")
        asked = mask(question.body, names=names, public=public)
        return await self._suggestions.add(NewItem(
            origin="marked", conversation_id=conversation_id, contact_id=conv.contact_id,
            question=asked.text, replies=(said.text,), masked=_kinds(asked, said),
            source_ids=(question.id, reply.id), asked_at=question.created_at,
            reply_message_id=reply.id, marked_by=actor.email,
        ))

    async def originals(self, suggestion_id: uuid.UUID) -> list[MaskItem]:
        """What was masked in a suggestion's sources (read again from the conversation
        record, never stored): approved text must not hold any of it."""
        async with self._sessions() as session:
            rows = (await session.execute(text(
                "SELECT source_ids, contact_id FROM kb_suggestion_items "
                "WHERE suggestion_id = :id"), {"id": suggestion_id})).all()
            ids = [i for r in rows for i in r.source_ids]
            messages = (await session.execute(
                select(Message.text, Message.transcript, Message.author_id)
                .where(Message.id.in_(ids)))).all() if ids else []
            names = await _names(session, None, [m.author_id for m in messages])
            names += [n for r in rows for n in await _names(session, r.contact_id, [])]
            public = await public_data(session)
        found: list[MaskItem] = []
        for m in messages:
            for body in (m.text, m.transcript):
                if body:
                    found.extend(mask(body, names=names, public=public).items)
        found.extend(MaskItem("name", n) for n in names)
        return found


def _item(ticket: Any, question: Any, replies: Sequence[Source], names: list[str],
          public: PublicData) -> tuple[str, NewItem | None]:
    if question is None or not (question.body or "").strip():
        return "no_question", None
    if not replies:
        return "no_reply", None
    asked = mask(question.body, names=names, public=public)
    said = [mask(r.body, names=names, public=public) for r in replies]
    kept = [(r, s) for r, s in zip(replies, said, strict=True) if substantive(s.text)]
    if not kept:
        return "trivial_reply", None
    return "item", NewItem(
        origin="handoff", conversation_id=ticket.conversation_id, contact_id=ticket.contact_id,
        question=asked.text, replies=tuple(s.text for _, s in kept),
        masked=_kinds(asked, *(s for _, s in kept)),
        source_ids=(question.id, *(r.id for r, _ in kept)), asked_at=question.created_at,
        ticket_id=ticket.id,
    )


def _kinds(*masked: Masked) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in masked:
        for kind, n in m.kinds().items():
            counts[kind] = counts.get(kind, 0) + n
    return counts


async def _human_replies(session: AsyncSession, conversation_id: uuid.UUID, *, after_seq: int,
                         until: datetime) -> list[Source]:
    rows = (await session.execute(
        select(Message.id, Message.text, Message.author_id)
        .where(Message.conversation_id == conversation_id, Message.direction == "out",
               Message.author.in_(HUMAN_AUTHORS), Message.seq > after_seq,
               Message.created_at <= until, Message.text.is_not(None),
               Message.status != "failed")
        .order_by(Message.seq)
    )).all()
    return [Source(r.id, r.text, r.author_id) for r in rows if (r.text or "").strip()]


async def _question_before(session: AsyncSession, conversation_id: uuid.UUID, seq: int
                           ) -> Any:
    """The newest of the customer's last messages before ``seq`` that asks something."""
    rows = (await session.execute(text(
        "SELECT id, coalesce(nullif(transcript, ''), text) AS body, created_at FROM messages "
        "WHERE conversation_id = :c AND direction = 'in' AND seq < :seq "
        "ORDER BY seq DESC LIMIT 5"), {"c": conversation_id, "seq": seq})).all()
    return next((r for r in rows if len(informative_words(r.body or "")) >= 2), None)


async def _names(session: AsyncSession, contact_id: uuid.UUID | None,
                 authors: Iterable[uuid.UUID | None]) -> list[str]:
    """The customer's and the agents' names (masked wherever they appear)."""
    names: list[str] = []
    if contact_id is not None:
        name = await session.scalar(select(Contact.name).where(Contact.id == contact_id))
        names += [name] if name else []
    wanted = {a for a in authors if a is not None}
    if wanted:
        names += list(await session.scalars(select(User.name).where(User.id.in_(wanted))))
    return names


async def public_data(session: AsyncSession) -> PublicData:
    """Contact data the knowledge base publishes (its phones and e-mail domains)."""
    bodies = (await session.scalars(
        select(Article.body).where(Article.deleted_at.is_(None)))).all()
    return PublicData.from_texts(bodies)
