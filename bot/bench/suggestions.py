"""``atiende bench suggestions``: how handed-over questions group into suggestions.

A set (``knowledge/evalsets/suggestions/grouping.yaml``: 200 customer messages about 20
topics, with the replies agents gave; ``dev.yaml``: the set the grouping was tuned on)
is written into a throwaway PostgreSQL as the record of real handoffs: per message a
customer, a conversation, the message handed over with the reason ``no_answer``, the
agent's reply and the resolved ticket. The harvester then files them exactly as it
does for the running bot (masking, cleaning, embedding, grouping), in a shuffled order
(grouping is online: each order is one run).

Figures per run: suggestions made (target <= 1.5 per topic), purity (the share of items
in their suggestion's majority topic; target >= 95%), suggestions mixing two topics,
topics split over several suggestions, and the time to file one handoff.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import cast

import yaml
from sqlalchemy import Table, insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import create_engine, migrate, session_factory
from bot.learning.harvest import Harvester
from bot.settings import Settings
from handoff.conversations import CONTACTS, CONVERSATIONS, MESSAGES
from handoff.tables import Ticket
from knowledge.store import KnowledgeStore
from knowledge.suggestions import SuggestionStore
from knowledge.synonyms import load_synonyms
from knowledge.usem import UsemEmbedder

TICKETS = cast(Table, Ticket.__table__)


@dataclass(frozen=True, slots=True)
class Case:
    topic: str
    question: str
    reply: str


@dataclass(frozen=True, slots=True)
class Run:
    seed: int
    suggestions: int
    purity: float
    mixed: int
    split_topics: int
    ms_per_item: float


def load_cases(path: Path) -> tuple[str, list[Case]]:
    """A set's messages, each with the reply its agent gave (reply i mod n of the topic)."""
    data = yaml.safe_load(path.read_text("utf-8"))
    replies = data["replies"]
    cases = [Case(topic, q, replies[topic][i % len(replies[topic])])
             for topic, questions in data["topics"].items() for i, q in enumerate(questions)]
    return str(data.get("business", path.stem)), cases


def shipped(name: str) -> Path:
    return Path(str(resources.files("knowledge").joinpath(f"evalsets/suggestions/{name}.yaml")))


async def _record(sessions: async_sessionmaker[AsyncSession], cases: list[Case]
                  ) -> dict[uuid.UUID, str]:
    """Each case as a resolved ``no_answer`` handoff; conversation id → topic."""
    start = datetime.now(UTC) - timedelta(days=1)
    topics: dict[uuid.UUID, str] = {}
    async with sessions.begin() as session:
        for n, case in enumerate(cases):
            contact, conversation, ticket = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            at = start + timedelta(seconds=10 * n)
            await session.execute(insert(CONTACTS).values(id=contact, phone_e164=f"+52155{n:08d}"))
            await session.execute(insert(CONVERSATIONS).values(
                id=conversation, contact_id=contact, channel="simulator", account="bench",
                owner="bot"))
            await session.execute(insert(MESSAGES).values([
                {"id": uuid.uuid4(), "conversation_id": conversation, "direction": "in",
                 "author": "customer", "kind": "text", "channel": "simulator",
                 "text": case.question, "status": "processed", "escalated": True,
                 "created_at": at},
                {"id": uuid.uuid4(), "conversation_id": conversation, "direction": "out",
                 "author": "agent", "kind": "text", "channel": "simulator",
                 "text": case.reply, "status": "sent", "escalated": None,
                 "created_at": at + timedelta(seconds=5)},
            ]))
            await session.execute(insert(TICKETS).values(
                id=ticket, conversation_id=conversation, reason="no_answer",
                opened_at=at + timedelta(seconds=1), closed_at=at + timedelta(seconds=8),
                outcome="resolved", language="es", csat_open=False))
            topics[conversation] = case.topic
    return topics


async def _score(sessions: async_sessionmaker[AsyncSession], topics: dict[uuid.UUID, str],
                 seed: int, seconds: float) -> Run:
    async with sessions() as session:
        rows = (await session.execute(text(
            "SELECT suggestion_id, conversation_id FROM kb_suggestion_items"))).all()
    groups: dict[uuid.UUID, list[str]] = {}
    for row in rows:
        groups.setdefault(row.suggestion_id, []).append(topics[row.conversation_id])
    majority = sum(Counter(g).most_common(1)[0][1] for g in groups.values())
    homes: dict[str, set[uuid.UUID]] = {}
    for suggestion, members in groups.items():
        for topic in members:
            homes.setdefault(topic, set()).add(suggestion)
    return Run(seed, len(groups), majority / max(1, len(rows)),
               sum(1 for g in groups.values() if len(set(g)) > 1),
               sum(1 for h in homes.values() if len(h) > 1), seconds * 1000 / max(1, len(rows)))


async def run_once(settings: Settings, url: str, cases: list[Case], seed: int,
                   usem: UsemEmbedder) -> Run:
    """One shuffled order of the set on a fresh copy of the tables."""
    engine = create_engine(url, pool_size=2)
    try:
        sessions = session_factory(engine)
        async with sessions.begin() as session:
            await session.execute(text(
                "TRUNCATE kb_suggestions, kb_suggestion_items, kb_harvested_tickets, "
                "handoff_tickets, messages, conversations, contacts CASCADE"))
        order = list(cases)
        random.Random(seed).shuffle(order)
        topics = await _record(sessions, order)
        store = KnowledgeStore(sessions, usem)
        suggestions = SuggestionStore(
            sessions, store, synonyms=load_synonyms(settings.knowledge.synonyms_file),
            similarity=settings.suggestions.group_similarity)
        started = time.perf_counter()
        await Harvester(sessions, suggestions).harvest(limit=len(order) + 1)
        return await _score(sessions, topics, seed, time.perf_counter() - started)
    finally:
        await engine.dispose()


async def run_bench(settings: Settings, path: Path, *, runs: int = 3) -> str:
    """Every run of the set on one throwaway PostgreSQL; the figures as text."""
    from bot.infra.embedded import EmbeddedPostgres

    business, cases = load_cases(path)
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="atiende-bench-")) / "pgdata",
                              delete_on_stop=True)
    url = server.start()
    try:
        migrate(url)
        usem = UsemEmbedder(threads=settings.knowledge.embedder_threads)
        results = [await run_once(settings, url, cases, seed, usem) for seed in range(runs)]
    finally:
        server.stop()
    topics = len({c.topic for c in cases})
    lines = [f"{path.name} ({business}): {len(cases)} handed-over questions, {topics} topics, "
             f"threshold {settings.suggestions.group_similarity}"]
    for r in results:
        lines.append(
            f"  order {r.seed}: {r.suggestions} suggestions ({r.suggestions / topics:.2f} per "
            f"topic), purity {r.purity:.1%}, {r.mixed} mixing topics, {r.split_topics} topics "
            f"split, {r.ms_per_item:.0f} ms per handoff filed")
    worst = max(r.suggestions for r in results)
    lines.append(
        f"  worst: {worst} suggestions (target <= {int(topics * 1.5)}), purity "
        f"{min(r.purity for r in results):.1%} (target >= 95%); median "
        f"{statistics.median(r.ms_per_item for r in results):.0f} ms per handoff")
    return "\n".join(lines)
