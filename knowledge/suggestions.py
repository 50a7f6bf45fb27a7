"""Knowledge suggestions: questions the bot handed over for lack of an answer, grouped,
with the replies agents gave; approved into the knowledge base or dismissed.

Grouping (``SuggestionStore.add``): each item (one customer's masked question and the
agent replies that answered it) is embedded twice, its clean question (with the base's
synonyms) and its replies without pleasantries. It joins the pending suggestion whose
members it is most similar to on average (a quarter the question cosine, three quarters
the reply cosine: ``REPLY_WEIGHT``) when that reaches ``similarity`` (0.56 for USE:
``dev.yaml`` in ``knowledge/evalsets/suggestions`` first mixes topics at 0.45, and the
most alike questions of two topics in the learning-loop test score 0.53); else it starts
a new one. Which suggestion an item joined first depends on arrival order: after each
item, two pending suggestions that reach the threshold together are merged. The mean
cosine to the members is the dot product with their mean vector, which each suggestion
keeps. One grouping at a time (an advisory lock): two items of one topic arriving
together end up in one suggestion.

Approval (``approve``) writes the article (a new one, or a new section and example
questions of an existing one) and marks the suggestion approved in ONE transaction, with
the suggestion's row locked: a second admin approving at the same time finds it
approved and gets ``SuggestionConflict``; a failure leaves neither half.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import any_, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.documents import MAX_QUESTIONS, ArticleDoc, validate_article
from knowledge.embeddings import Embedder
from knowledge.errors import DocumentError, EntryNotFound, SuggestionConflict
from knowledge.indexing import vector_literal
from knowledge.models import Article, Suggestion, SuggestionItem
from knowledge.store import KnowledgeStore
from knowledge.suggestion_text import article_body, article_id, clean_question, title_for
from knowledge.synonyms import Synonyms

__all__ = [
    "Approval",
    "Approved",
    "Draft",
    "DraftInput",
    "NewItem",
    "SuggestionStore",
    "SuggestionView",
]

NEW_ARTICLE_QUESTIONS = 20  # example questions a new article starts with, at most
ATTEMPTS = 3  # an extended article edited meanwhile: read it again, this many times

# How much the replies weigh in an item's similarity to a suggestion (the questions the
# rest). On dev.yaml, question cosines of one topic overlap those of different topics
# (10th percentile within 0.20, highest across 0.60), reply cosines do not (0.73
# against 0.54): what agents answer says best what was asked.
REPLY_WEIGHT = 0.75
_NEAREST = text(
    "SELECT id, -(CAST(:qw AS float8) * (question_mean <#> CAST(:q AS vector)) "
    "+ CAST(:rw AS float8) * (reply_mean <#> CAST(:r AS vector))) AS score "
    "FROM kb_suggestions WHERE status = 'pending' AND model = :model "
    "AND question_mean IS NOT NULL ORDER BY score DESC LIMIT 1"
)
# the pending suggestion closest to :id (the dot product of their mean vectors is the
# mean similarity of their members), and the two creation times
_CLOSEST = text(
    "SELECT o.id, o.created_at, t.created_at AS target_created, "
    "-(CAST(:qw AS float8) * (o.question_mean <#> t.question_mean) "
    "+ CAST(:rw AS float8) * (o.reply_mean <#> t.reply_mean)) AS score "
    "FROM kb_suggestions o JOIN kb_suggestions t ON t.id = :id "
    "WHERE o.status = 'pending' AND o.id <> t.id AND o.model = t.model "
    "AND o.question_mean IS NOT NULL ORDER BY score DESC LIMIT 1"
)
_MOVE = text("UPDATE kb_suggestion_items SET suggestion_id = :keep WHERE suggestion_id = :gone")
_DROP = text("DELETE FROM kb_suggestions WHERE id = :gone")
_REFRESH = text(
    "UPDATE kb_suggestions s SET question_mean = a.q, reply_mean = a.r, items = a.n, "
    "customers = a.c, last_asked_at = a.last, updated_at = now() FROM ("
    "SELECT avg(question_vec) AS q, avg(reply_vec) AS r, count(*) AS n, "
    "count(DISTINCT coalesce(contact_id, conversation_id)) AS c, max(asked_at) AS last "
    "FROM kb_suggestion_items WHERE suggestion_id = :id) a WHERE s.id = :id"
)
# counts from the items themselves: an erased customer's items are gone
_LIST = text(
    "SELECT s.id, s.status, s.created_at, s.draft_title, s.draft_body, s.draft_model, "
    "s.draft_items, s.article_id, s.action, s.decided_by, s.decided_at, "
    "a.n, a.c, a.last FROM kb_suggestions s JOIN LATERAL ("
    "SELECT count(*) AS n, count(DISTINCT coalesce(contact_id, conversation_id)) AS c, "
    "max(asked_at) AS last FROM kb_suggestion_items i WHERE i.suggestion_id = s.id) a "
    "ON a.n > 0 WHERE (CAST(:status AS text) IS NULL OR s.status = :status) "
    "AND (CAST(:id AS uuid) IS NULL OR s.id = :id) "
    "ORDER BY a.c DESC, a.last DESC, s.id LIMIT :limit"
)
_ITEMS = text(
    "SELECT suggestion_id, question, replies, masked, asked_at FROM kb_suggestion_items "
    "WHERE suggestion_id = ANY(:ids) ORDER BY asked_at DESC, id DESC"
)
# the item nearest its suggestion's mean: the question a title comes from, the replies
# a draft comes from
_CENTRAL = (
    "SELECT DISTINCT ON (i.suggestion_id) i.suggestion_id, i.question, i.replies "
    "FROM kb_suggestion_items i JOIN kb_suggestions s ON s.id = i.suggestion_id "
    "WHERE i.suggestion_id = ANY(:ids) ORDER BY i.suggestion_id, {order}, i.id"
)
_CENTRAL_QUESTION = text(_CENTRAL.format(order="i.question_vec <#> s.question_mean"))
_CENTRAL_REPLY = text(_CENTRAL.format(order="i.reply_vec <#> s.reply_mean"))


@dataclass(frozen=True, slots=True)
class NewItem:
    """One customer's question and the replies that answered it, already masked."""

    origin: str  # handoff | marked
    conversation_id: uuid.UUID
    contact_id: uuid.UUID | None
    question: str
    replies: tuple[str, ...]
    masked: Mapping[str, int]
    source_ids: tuple[uuid.UUID, ...]
    asked_at: datetime
    ticket_id: uuid.UUID | None = None
    reply_message_id: uuid.UUID | None = None
    marked_by: str | None = None


@dataclass(frozen=True, slots=True)
class Draft:
    title: str
    body: str
    source: str  # llm | replies
    model: str | None = None


@dataclass(frozen=True, slots=True)
class SuggestionView:
    """A suggestion as an admin sees it (every text masked)."""

    id: uuid.UUID
    status: str
    questions: tuple[str, ...]  # as customers wrote them, newest first
    replies: tuple[str, ...]
    count: int  # customers who asked
    items: int
    last_asked_at: datetime
    created_at: datetime
    masked: dict[str, int]
    draft: Draft
    example_questions: tuple[str, ...]  # the questions without greetings or own data
    article_id: str | None = None
    action: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DraftInput:
    """What an LLM drafts an article from: the grouped questions and the agents' words."""

    id: uuid.UUID
    questions: tuple[str, ...]
    replies: tuple[str, ...]
    items: int


@dataclass(frozen=True, slots=True)
class Approval:
    """An admin's decision: a new article (``title``) or a new section of ``article_id``."""

    body: str
    editor: str
    title: str | None = None
    article_id: str | None = None
    questions: tuple[str, ...] | None = None  # None: the suggestion's own questions
    kind: str = "faq"
    tags: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Approved:
    suggestion_id: uuid.UUID
    article_id: str
    created: bool  # a new article (else an existing one extended)
    version: int


class SuggestionStore:
    """Groups handed-over questions into suggestions; approves and dismisses them."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], store: KnowledgeStore, *,
        synonyms: Synonyms | None = None, similarity: float = 0.56,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._synonyms = synonyms or Synonyms.empty()
        self._similarity = similarity

    @property
    def embedder(self) -> Embedder:
        return self._store.embedder

    # -- grouping ------------------------------------------------------------------------

    async def add(self, item: NewItem) -> uuid.UUID:
        """File an item under the pending suggestion it belongs to (or a new one); an item
        from a ticket or reply already filed returns that suggestion, unchanged."""
        if not item.replies or not item.question.strip():
            raise DocumentError("suggestion", "an item needs a question and a reply")
        async with self._sessions() as session:
            found = await self._existing(session, item)
        if found is not None:
            return found
        question = clean_question(item.question)
        replies = article_body(item.replies) or " ".join(item.replies)
        q_vec, r_vec = await self.embedder.embed(
            [self._synonyms.canonical(question) or question, replies])
        async with self._sessions.begin() as session:
            await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('kb_suggestions'))"))
            found = await self._existing(session, item)
            if found is not None:
                return found
            target = await self._nearest(session, q_vec, r_vec)
            if target is None:
                target = uuid.uuid4()
                session.add(Suggestion(id=target, model=self.embedder.name,
                                       last_asked_at=item.asked_at))
                await session.flush()
            session.add(SuggestionItem(
                suggestion_id=target, origin=item.origin, ticket_id=item.ticket_id,
                reply_message_id=item.reply_message_id, conversation_id=item.conversation_id,
                contact_id=item.contact_id, question=item.question, replies=list(item.replies),
                masked=dict(item.masked), source_ids=list(item.source_ids),
                question_vec=q_vec, reply_vec=r_vec, model=self.embedder.name,
                asked_at=item.asked_at, marked_by=item.marked_by,
            ))
            await session.flush()
            await session.execute(_REFRESH, {"id": target})
            target = await self._merge(session, target)
        return target

    async def _merge(self, session: AsyncSession, target: uuid.UUID) -> uuid.UUID:
        """Two pending suggestions whose members are as similar to each other on average
        as an item must be to join one are one suggestion: the items of the newer move to
        the older (which one an item joined first depended only on arrival order)."""
        while True:
            row = (await session.execute(_CLOSEST, {
                "id": target, "qw": 1.0 - REPLY_WEIGHT, "rw": REPLY_WEIGHT})).first()
            if row is None or float(row.score) < self._similarity:
                return target
            keep, gone = (row.id, target) if row.created_at <= row.target_created \
                else (target, row.id)
            await session.execute(_MOVE, {"keep": keep, "gone": gone})
            await session.execute(_DROP, {"gone": gone})
            await session.execute(_REFRESH, {"id": keep})
            target = keep

    async def _existing(self, session: AsyncSession, item: NewItem) -> uuid.UUID | None:
        if item.ticket_id is not None:
            where = SuggestionItem.ticket_id == item.ticket_id
        elif item.reply_message_id is not None:
            # a reply already filed (marked, or part of a harvested handoff)
            where = (SuggestionItem.reply_message_id == item.reply_message_id) | \
                (any_(SuggestionItem.source_ids) == item.reply_message_id)
        else:
            return None
        return await session.scalar(select(SuggestionItem.suggestion_id).where(where).limit(1))

    async def _nearest(self, session: AsyncSession, q_vec: list[float], r_vec: list[float]
                       ) -> uuid.UUID | None:
        row = (await session.execute(_NEAREST, {
            "q": vector_literal(q_vec), "r": vector_literal(r_vec), "model": self.embedder.name,
            "qw": 1.0 - REPLY_WEIGHT, "rw": REPLY_WEIGHT,
        })).first()
        if row is None or float(row.score) < self._similarity:
            return None
        found: uuid.UUID = row.id
        return found

    # -- reading -------------------------------------------------------------------------

    async def listing(self, *, status: str | None = None, limit: int = 200
                      ) -> list[SuggestionView]:
        """Suggestions, the most customers first, then the most recently asked."""
        return await self._views(status=status, limit=limit)

    async def get(self, suggestion_id: uuid.UUID) -> SuggestionView:
        views = await self._views(suggestion_id=suggestion_id, limit=1)
        if not views:
            raise EntryNotFound(f"suggestion {suggestion_id} not found")
        return views[0]

    async def _views(self, *, status: str | None = None, suggestion_id: uuid.UUID | None = None,
                     limit: int) -> list[SuggestionView]:
        async with self._sessions() as session:
            rows = (await session.execute(_LIST, {
                "status": status, "id": suggestion_id, "limit": limit})).all()
            ids = [r.id for r in rows]
            if not ids:
                return []
            items = (await session.execute(_ITEMS, {"ids": ids})).all()
            questions = {r.suggestion_id: r for r in
                         (await session.execute(_CENTRAL_QUESTION, {"ids": ids})).all()}
            replies = {r.suggestion_id: r for r in
                       (await session.execute(_CENTRAL_REPLY, {"ids": ids})).all()}
        by_id: dict[uuid.UUID, list[Any]] = {}
        for item in items:
            by_id.setdefault(item.suggestion_id, []).append(item)
        return [_view(r, by_id.get(r.id, []), questions.get(r.id), replies.get(r.id))
                for r in rows]

    async def drafts_due(self, *, limit: int = 5) -> list[DraftInput]:
        """Pending suggestions whose LLM draft is missing or older than their items."""
        async with self._sessions() as session:
            ids = list((await session.scalars(
                select(Suggestion.id).where(Suggestion.status == "pending",
                                            Suggestion.items > Suggestion.draft_items)
                .order_by(Suggestion.customers.desc(), Suggestion.last_asked_at.desc())
                .limit(limit)
            )).all())
        out = []
        for view in [await self.get(i) for i in ids]:
            out.append(DraftInput(view.id, view.example_questions[:20],
                                  tuple(dict.fromkeys(article_body([r]) or r
                                                      for r in view.replies))[:10],
                                  view.items))
        return out

    async def save_draft(self, suggestion_id: uuid.UUID, draft: Draft, *, items: int) -> None:
        """Keep an LLM's draft of a pending suggestion (written from ``items`` items)."""
        async with self._sessions.begin() as session:
            row = await session.get(Suggestion, suggestion_id, with_for_update=True)
            if row is None or row.status != "pending":
                return
            row.draft_title, row.draft_body, row.draft_model = draft.title, draft.body, draft.model
            row.draft_items = items

    async def skip_drafting(self, suggestion_id: uuid.UUID, *, items: int) -> None:
        """No LLM draft for these items (none configured, or it failed the checks)."""
        async with self._sessions.begin() as session:
            row = await session.get(Suggestion, suggestion_id, with_for_update=True)
            if row is not None and row.status == "pending":
                row.draft_title = row.draft_body = row.draft_model = None
                row.draft_items = items

    # -- deciding ------------------------------------------------------------------------

    async def approve(self, suggestion_id: uuid.UUID, approval: Approval) -> Approved:
        """Write the article and mark the suggestion approved, atomically (module doc)."""
        view = await self.get(suggestion_id)
        _require_pending(view.status, view.article_id)
        for _ in range(ATTEMPTS):
            doc, expected = await self._document(view, approval)
            vectors = await self._store.article_vectors(doc)
            async with self._sessions.begin() as session:
                row = await session.get(Suggestion, suggestion_id, with_for_update=True)
                if row is None:
                    raise EntryNotFound(f"suggestion {suggestion_id} not found")
                _require_pending(row.status, row.article_id)
                if expected is None:
                    doc = dataclasses.replace(doc, id=await _free_id(session, doc.id))
                elif not await _unchanged(session, doc.id, expected):
                    continue  # edited meanwhile: build the extension on the new text
                saved = await self._store.write_article_in(session, doc, vectors,
                                                           editor=approval.editor)
                version = saved.version if saved is not None else (expected or 1)
                row.status, row.article_id = "approved", doc.id
                row.action = "create" if expected is None else "extend"
                row.decided_by, row.decided_at = approval.editor, func.now()
                row.approved_title, row.approved_body = doc.title, approval.body.strip()
            await self._store.after_write()
            return Approved(suggestion_id, doc.id, expected is None, version)
        raise SuggestionConflict(
            "the article was edited while this was being approved; try again",
            status="pending")

    async def dismiss(self, suggestion_id: uuid.UUID, *, editor: str) -> SuggestionView:
        """Not for the knowledge base; dismissing twice is harmless."""
        async with self._sessions.begin() as session:
            row = await session.get(Suggestion, suggestion_id, with_for_update=True)
            if row is None:
                raise EntryNotFound(f"suggestion {suggestion_id} not found")
            if row.status == "approved":
                _require_pending(row.status, row.article_id)
            if row.status == "pending":
                row.status, row.decided_by = "dismissed", editor
                row.decided_at = func.now()
        return await self.get(suggestion_id)

    async def _document(self, view: SuggestionView, approval: Approval
                        ) -> tuple[ArticleDoc, int | None]:
        """The article to write and, when extending, the version it extends."""
        body = approval.body.strip()
        source = f"suggestion {view.id}"
        if not body:
            raise DocumentError(source, "the body is empty: write what the bot should answer")
        asked = approval.questions if approval.questions is not None \
            else view.example_questions[:NEW_ARTICLE_QUESTIONS]
        questions = [q for q in dict.fromkeys(" ".join(q.split()) for q in asked) if q]
        if approval.article_id is None:
            title = (approval.title or "").strip()
            if not title:
                raise DocumentError(source, "give a title (a new article) or an article_id "
                                    "(a new section of that article)")
            doc = validate_article(source, id=article_id(title), title=title,
                                   kind=approval.kind, tags=list(approval.tags), body=body,
                                   questions=[q[:300] for q in questions][:MAX_QUESTIONS])
            return doc, None
        current = await self._store.get_article(approval.article_id)
        if current.deleted:
            raise EntryNotFound(f"article {approval.article_id!r} not found")
        heading = (approval.title or view.draft.title).strip().lstrip("#").strip()
        added = body if body.startswith("#") else f"## {heading}\n\n{body}"
        merged = list(dict.fromkeys([*current.questions, *(q[:300] for q in questions)]))
        doc = validate_article(
            source, id=current.id, title=current.title, kind=current.kind,
            tags=list(current.tags), body=f"{current.body.rstrip()}\n\n{added}\n",
            questions=merged[:MAX_QUESTIONS],
        )
        return doc, current.version


def _require_pending(status: str, article: str | None) -> None:
    if status == "approved":
        raise SuggestionConflict(f"already approved (article {article})", status=status,
                                 article_id=article)
    if status == "dismissed":
        raise SuggestionConflict("the suggestion was dismissed", status=status)


async def _free_id(session: AsyncSession, wanted: str) -> str:
    taken = (await session.scalars(
        select(Article.id).where(Article.id.like(f"{wanted}%")))).all()
    return article_id(wanted, taken)


async def _unchanged(session: AsyncSession, key: str, version: int) -> bool:
    row = await session.get(Article, key, with_for_update=True)
    return row is not None and row.deleted_at is None and row.version == version


def _view(row: Any, items: Sequence[Any], central_q: Any, central_r: Any) -> SuggestionView:
    questions = tuple(dict.fromkeys(i.question for i in items))
    replies = tuple(dict.fromkeys(r for i in items for r in i.replies))
    masked: dict[str, int] = {}
    for item in items:
        for kind, count in (item.masked or {}).items():
            masked[kind] = masked.get(kind, 0) + int(count)
    cleaned = tuple(dict.fromkeys(clean_question(q) for q in questions))
    if row.draft_body and row.draft_items >= row.n:
        draft = Draft(row.draft_title or "", row.draft_body, "llm", row.draft_model)
    else:
        question = clean_question(central_q.question) if central_q else cleaned[0]
        said = list(central_r.replies) if central_r else list(replies[:1])
        draft = Draft(title_for(question), article_body(said) or "\n\n".join(said), "replies")
    return SuggestionView(
        id=row.id, status=row.status, questions=questions, replies=replies, count=int(row.c),
        items=int(row.n), last_asked_at=row.last, created_at=row.created_at, masked=masked,
        draft=draft, example_questions=cleaned, article_id=row.article_id, action=row.action,
        decided_by=row.decided_by, decided_at=row.decided_at,
    )
