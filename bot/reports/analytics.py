"""Analytics read from the conversation record (PostgreSQL is the truth, not the metrics).

One service, ``Analytics.report(Period)``, computes for a date range (business time
zone) and an optional channel: conversations and messages per day, deflection per
intent (share of the bot's answers whose conversation never needed a human),
escalation rate and reasons, first-response times (bot, and human after an
escalation), busiest hours, the top unanswered questions clustered by their
folded words, LLM usage and cost per provider/model (``llm_calls``), and the
transcription volume per backend (``transcriptions``).

Definitions (so the numbers can be checked by hand):
- a conversation is *active* in the period when it has an inbound message in it;
- a conversation *needed a human* when one of its messages in the period was escalated
  or a human (agent or the owner's phone) wrote in it;
- *deflection* of an intent = bot-answered messages of that intent in conversations
  that did not need a human / all bot-answered messages of that intent;
- *first response* = first outbound message after a customer message that followed a
  silence of the business (bot: author bot; human: first agent/owner message after an
  escalation).
- LLM usage: a call *answered* when a deployment gave text (its provider/model, tokens and
  litellm's cost are recorded); each deployment that failed on the way (timeout, 429,
  error) is a *failed attempt* of that provider/model; a call is *unanswered* when the
  chain gave nothing. With a channel filter, only calls made while answering a
  conversation of that channel count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge.text import fold

UNANSWERED_INTENTS = ("no_answer", "other", "unknown")
HUMAN_AUTHORS = ("agent", "owner_phone")
STOPWORDS = frozenset(
    "a al algo con como cual de del el en es esta este hay la las lo los me mi mis no o "
    "para pero por que quiero se si sus su te tengo tiene un una uno y ya yo the i is a to "
    "of and my do you what how can".split()
)


@dataclass(frozen=True, slots=True)
class Period:
    """A closed range of business days, optionally one channel."""

    start: date
    end: date
    channel: str | None = None
    timezone: str = "America/Mexico_City"

    def bounds(self) -> tuple[datetime, datetime]:
        zone = ZoneInfo(self.timezone)
        return (
            datetime.combine(self.start, time.min, zone),
            datetime.combine(self.end + timedelta(days=1), time.min, zone),
        )

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


@dataclass(frozen=True, slots=True)
class DayRow:
    day: date
    conversations: int
    inbound: int
    outbound: int
    escalations: int


@dataclass(frozen=True, slots=True)
class IntentRow:
    intent: str
    answered: int
    deflected: int

    @property
    def deflection(self) -> float:
        return self.deflected / self.answered if self.answered else 0.0


@dataclass(frozen=True, slots=True)
class Durations:
    count: int
    p50_seconds: float | None
    p90_seconds: float | None


@dataclass(frozen=True, slots=True)
class GapCluster:
    """Customer questions the bot could not answer, grouped by their words."""

    key: str
    count: int
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HumanStats:
    """Handoff tickets opened in the period (times in business hours, from the inbox)."""

    tickets: int
    first_response: Durations
    resolution: Durations
    first_response_breaches: int
    resolution_breaches: int
    csat_answers: int
    csat_average: float | None
    csat_scores: dict[int, int]


@dataclass(frozen=True, slots=True)
class LLMUsageRow:
    """One provider/model: answers with their tokens and cost, and its failed attempts."""

    provider: str
    model: str
    answered: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    p50_latency_ms: float | None
    timeouts: int = 0
    rate_limited: int = 0
    errors: int = 0

    @property
    def failed_attempts(self) -> int:
        return self.timeouts + self.rate_limited + self.errors


@dataclass(frozen=True, slots=True)
class LLMUsage:
    calls: int
    answered: int
    unanswered: int  # the chain gave nothing: every provider failed, or the time budget ran out
    rejected: int  # answers our checks refused (they were paid for all the same)
    cost_usd: float
    by_purpose: dict[str, int]
    models: list[LLMUsageRow]


@dataclass(frozen=True, slots=True)
class TranscriptionRow:
    """Voice notes per backend: how many, how many failed, minutes of audio."""

    backend: str
    notes: int
    failed: int
    audio_minutes: float
    p50_elapsed_seconds: float | None


@dataclass(frozen=True, slots=True)
class Report:
    period: Period
    active_conversations: int
    inbound: int
    needed_human: int
    escalated_conversations: int
    days: list[DayRow]
    intents: list[IntentRow]
    reasons: dict[str, int]
    bot_first_response: Durations
    human_first_response: Durations
    hours: list[int]  # inbound messages per hour of day (business time), 0..23
    gaps: list[GapCluster]
    channels: list[str] = field(default_factory=list)
    human: HumanStats | None = None
    llm: LLMUsage | None = None
    transcriptions: list[TranscriptionRow] = field(default_factory=list)

    @property
    def escalation_rate(self) -> float:
        active = self.active_conversations
        return self.escalated_conversations / active if active else 0.0

    @property
    def deflection(self) -> float:
        answered = sum(i.answered for i in self.intents)
        return sum(i.deflected for i in self.intents) / answered if answered else 0.0


_SCOPE = """
    m.created_at >= :since AND m.created_at < :until
    AND (CAST(:channel AS text) IS NULL OR m.channel = CAST(:channel AS text))
"""


class Analytics:
    """Computes reports from the conversation record (read-only)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *,
        first_response_sla_seconds: float = 15 * 60, resolution_sla_seconds: float = 4 * 3600,
    ) -> None:
        self._sessions = sessions
        self._sla = (first_response_sla_seconds, resolution_sla_seconds)

    async def report(self, period: Period) -> Report:
        since, until = period.bounds()
        params: dict[str, object] = {
            "since": since, "until": until, "channel": period.channel, "tz": period.timezone,
        }
        async with self._sessions() as s:
            totals = await self._totals(s, params)
            days = await self._days(s, params, period)
            intents = await self._intents(s, params)
            reasons = await self._reasons(s, params)
            bot_first = await self._durations(s, params, human=False)
            human_first = await self._durations(s, params, human=True)
            hours = await self._hours(s, params)
            unanswered = await self._unanswered(s, params)
            channels = list((await s.execute(text(
                "SELECT DISTINCT channel FROM conversations ORDER BY 1"))).scalars().all())
            human = await self._human(s, params)
            llm = await self._llm(s, params)
            transcriptions = await self._transcriptions(s, params)
        return Report(
            period=period, active_conversations=int(totals[0]), needed_human=int(totals[1]),
            escalated_conversations=int(totals[2]), inbound=int(totals[3]), days=days,
            intents=intents, reasons=reasons, bot_first_response=bot_first,
            human_first_response=human_first, hours=hours,
            gaps=cluster_questions(list(unanswered)), channels=channels, human=human,
            llm=llm, transcriptions=transcriptions,
        )

    async def _totals(self, s: AsyncSession, params: dict[str, object]) -> Any:
        """Active conversations, those that needed a human, escalated ones, inbound count."""
        return (await s.execute(text(f"""
            WITH flagged AS (
              SELECT m.conversation_id,
                     bool_or(m.direction = 'in') AS active,
                     bool_or(coalesce(m.escalated, false)) AS escalated,
                     bool_or(m.escalated OR m.author IN ('agent', 'owner_phone')) AS human
              FROM messages m WHERE {_SCOPE} GROUP BY m.conversation_id)
            SELECT count(*) FILTER (WHERE active), count(*) FILTER (WHERE active AND human),
                   count(*) FILTER (WHERE active AND escalated),
                   (SELECT count(*) FROM messages m WHERE m.direction = 'in' AND {_SCOPE})
            FROM flagged"""), params)).one()

    async def _intents(self, s: AsyncSession, params: dict[str, object]) -> list[IntentRow]:
        return [
            IntentRow(r[0], int(r[1]), int(r[2]))
            for r in await s.execute(text(f"""
                WITH human AS (
                  SELECT m.conversation_id FROM messages m WHERE {_SCOPE}
                  GROUP BY m.conversation_id
                  HAVING bool_or(m.escalated OR m.author IN ('agent', 'owner_phone')))
                SELECT m.intent, count(*),
                       count(*) FILTER (WHERE m.conversation_id NOT IN
                                        (SELECT conversation_id FROM human))
                FROM messages m
                WHERE m.direction = 'in' AND m.intent IS NOT NULL AND {_SCOPE}
                GROUP BY m.intent ORDER BY count(*) DESC, m.intent"""), params)
        ]

    async def _reasons(self, s: AsyncSession, params: dict[str, object]) -> dict[str, int]:
        # the reason stored on the handoff ticket: the conversation's own owner_reason
        # moves on (to "resolved", "timeout"…) once the handoff ends
        return {
            str(r[0] or "unknown"): int(r[1])
            for r in await s.execute(text(f"""
                SELECT t.reason, count(DISTINCT t.conversation_id) FROM handoff_tickets t
                JOIN messages m ON m.conversation_id = t.conversation_id
                WHERE m.escalated AND {_SCOPE}
                  AND t.opened_at >= :since AND t.opened_at < :until
                GROUP BY t.reason ORDER BY 2 DESC, 1"""), params)
        }

    async def _hours(self, s: AsyncSession, params: dict[str, object]) -> list[int]:
        hours = [0] * 24
        for hour, n in await s.execute(text(f"""
                SELECT extract(hour FROM m.created_at AT TIME ZONE :tz)::int, count(*)
                FROM messages m WHERE m.direction = 'in' AND {_SCOPE} GROUP BY 1"""),
                params):
            hours[int(hour)] = int(n)
        return hours

    async def _unanswered(self, s: AsyncSession, params: dict[str, object]) -> Sequence[str]:
        """The latest questions the bot could not answer (the knowledge gaps)."""
        return (await s.execute(text(f"""
            SELECT coalesce(m.text, m.transcript) FROM messages m
            WHERE m.direction = 'in' AND {_SCOPE}
              AND (m.intent = ANY(:gaps) OR (m.escalated AND EXISTS (
                    SELECT 1 FROM conversations c WHERE c.id = m.conversation_id
                    AND c.owner_reason = 'no_answer')))
              AND coalesce(m.text, m.transcript) IS NOT NULL
            ORDER BY m.created_at DESC LIMIT 2000"""),
            {**params, "gaps": list(UNANSWERED_INTENTS)})).scalars().all()

    async def _llm(self, s: AsyncSession, params: dict[str, object]) -> LLMUsage:
        scope = """l.created_at >= :since AND l.created_at < :until AND (
            CAST(:channel AS text) IS NULL OR EXISTS (SELECT 1 FROM conversations c
            WHERE c.id = l.conversation_id AND c.channel = CAST(:channel AS text)))"""
        totals = (await s.execute(text(f"""
            SELECT count(*), count(*) FILTER (WHERE l.model IS NOT NULL),
                   count(*) FILTER (WHERE l.model IS NULL), count(l.rejected),
                   coalesce(sum(l.cost_usd), 0)
            FROM llm_calls l WHERE {scope}"""), params)).one()
        purposes = {
            str(k): int(v) for k, v in await s.execute(text(f"""
                SELECT l.purpose, count(*) FROM llm_calls l WHERE {scope}
                GROUP BY 1 ORDER BY 2 DESC, 1"""), params)
        }
        rows: dict[tuple[str, str], dict[str, object]] = {}
        for r in await s.execute(text(f"""
                SELECT l.provider, l.model, count(*), sum(l.prompt_tokens),
                       sum(l.completion_tokens), coalesce(sum(l.cost_usd), 0),
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY l.latency_ms)
                FROM llm_calls l WHERE l.model IS NOT NULL AND {scope}
                GROUP BY 1, 2"""), params):
            rows[(str(r[0] or "?"), str(r[1]))] = {
                "answered": int(r[2]), "prompt_tokens": int(r[3] or 0),
                "completion_tokens": int(r[4] or 0), "cost_usd": float(r[5]),
                "p50_latency_ms": float(r[6]) if r[6] is not None else None,
            }
        kinds = {"timeout": "timeouts", "rate_limited": "rate_limited"}
        for provider, model, outcome, n in await s.execute(text(f"""
                SELECT a->>'provider', a->>'model', a->>'outcome', count(*)
                FROM llm_calls l,
                     jsonb_array_elements(coalesce(l.attempts, '[]'::jsonb)) AS a
                WHERE jsonb_typeof(a) = 'object' AND {scope} GROUP BY 1, 2, 3"""), params):
            row = rows.setdefault((str(provider or "?"), str(model or "?")), {
                "answered": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0,
                "p50_latency_ms": None,
            })
            key = kinds.get(str(outcome), "errors")
            row[key] = int(row.get(key, 0)) + int(n)  # type: ignore[call-overload]
        models = sorted(
            (LLMUsageRow(provider, model, **values) for (provider, model), values in rows.items()),  # type: ignore[arg-type]
            key=lambda m: (-m.answered, -m.failed_attempts, m.provider, m.model),
        )
        return LLMUsage(
            calls=int(totals[0]), answered=int(totals[1]), unanswered=int(totals[2]),
            rejected=int(totals[3]), cost_usd=float(totals[4]), by_purpose=purposes,
            models=models,
        )

    async def _transcriptions(
        self, s: AsyncSession, params: dict[str, object]
    ) -> list[TranscriptionRow]:
        return [
            TranscriptionRow(
                str(r[0]), int(r[1]), int(r[2]), round(float(r[3] or 0) / 60, 3),
                float(r[4]) if r[4] is not None else None,
            )
            for r in await s.execute(text("""
                SELECT t.backend, count(*), count(*) FILTER (WHERE t.outcome <> 'ok'),
                       sum(t.audio_seconds) FILTER (WHERE t.outcome = 'ok'),
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY t.elapsed_seconds)
                FROM transcriptions t
                WHERE t.created_at >= :since AND t.created_at < :until AND (
                  CAST(:channel AS text) IS NULL OR EXISTS (SELECT 1 FROM conversations c
                  WHERE c.id = t.conversation_id AND c.channel = CAST(:channel AS text)))
                GROUP BY 1 ORDER BY 2 DESC, 1"""), params)
        ]

    async def _human(self, s: AsyncSession, params: dict[str, object]) -> HumanStats | None:
        exists = await s.scalar(text("SELECT to_regclass('handoff_tickets') IS NOT NULL"))
        if not exists:
            return None
        scope = """t.opened_at >= :since AND t.opened_at < :until AND (
            CAST(:channel AS text) IS NULL OR EXISTS (SELECT 1 FROM conversations c
            WHERE c.id = t.conversation_id AND c.channel = CAST(:channel AS text)))"""
        row = (await s.execute(text(f"""
            SELECT count(*),
              count(first_response_seconds),
              percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_seconds),
              percentile_cont(0.9) WITHIN GROUP (ORDER BY first_response_seconds),
              count(resolution_seconds),
              percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_seconds),
              percentile_cont(0.9) WITHIN GROUP (ORDER BY resolution_seconds),
              count(*) FILTER (WHERE first_response_seconds > :frs),
              count(*) FILTER (WHERE resolution_seconds > :rs),
              count(csat_score), avg(csat_score)
            FROM handoff_tickets t WHERE {scope}"""),
            {**params, "frs": self._sla[0], "rs": self._sla[1]})).one()
        scores = {
            int(k): int(v)
            for k, v in await s.execute(text(f"""
                SELECT csat_score, count(*) FROM handoff_tickets t
                WHERE csat_score IS NOT NULL AND {scope} GROUP BY 1 ORDER BY 1"""), params)
        }

        def f(v: object) -> float | None:
            return float(v) if v is not None else None  # type: ignore[arg-type]

        return HumanStats(
            tickets=int(row[0]), first_response=Durations(int(row[1]), f(row[2]), f(row[3])),
            resolution=Durations(int(row[4]), f(row[5]), f(row[6])),
            first_response_breaches=int(row[7]), resolution_breaches=int(row[8]),
            csat_answers=int(row[9]), csat_average=f(row[10]), csat_scores=scores,
        )

    async def _days(
        self, s: AsyncSession, params: dict[str, object], period: Period
    ) -> list[DayRow]:
        rows = {
            r[0]: r
            for r in await s.execute(text(f"""
                SELECT (m.created_at AT TIME ZONE :tz)::date AS day,
                       count(DISTINCT m.conversation_id) FILTER (WHERE m.direction = 'in'),
                       count(*) FILTER (WHERE m.direction = 'in'),
                       count(*) FILTER (WHERE m.direction = 'out'),
                       count(*) FILTER (WHERE m.escalated)
                FROM messages m WHERE {_SCOPE} GROUP BY 1"""), params)
        }
        return [
            DayRow(d, *(int(v) for v in rows[d][1:])) if d in rows else DayRow(d, 0, 0, 0, 0)
            for d in period.days()
        ]

    async def _durations(
        self, s: AsyncSession, params: dict[str, object], *, human: bool
    ) -> Durations:
        # bot: each customer message that follows an outbound (or opens the conversation)
        # → the first bot message after it. human: each escalated message → the first
        # agent/owner message after it.
        if human:
            starts = "m.escalated"
            responders = "('agent', 'owner_phone')"
        else:
            starts = """m.direction = 'in' AND NOT EXISTS (
                SELECT 1 FROM messages p WHERE p.conversation_id = m.conversation_id
                AND p.seq < m.seq AND p.seq > coalesce((SELECT max(o.seq) FROM messages o
                    WHERE o.conversation_id = m.conversation_id AND o.seq < m.seq
                    AND o.direction = 'out'), 0) AND p.direction = 'in')"""
            responders = "('bot')"
        row = (await s.execute(text(f"""
            WITH waits AS (
              SELECT extract(epoch FROM (
                SELECT min(r.created_at) FROM messages r
                WHERE r.conversation_id = m.conversation_id AND r.seq > m.seq
                  AND r.direction = 'out' AND r.author IN {responders}) - m.created_at) AS w
              FROM messages m WHERE {starts} AND {_SCOPE})
            SELECT count(w), percentile_cont(0.5) WITHIN GROUP (ORDER BY w),
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY w)
            FROM waits WHERE w IS NOT NULL"""), params)).one()
        return Durations(
            int(row[0]),
            float(row[1]) if row[1] is not None else None,
            float(row[2]) if row[2] is not None else None,
        )


_WORD = re.compile(r"[a-z0-9ñ]+")


def _words(question: str) -> frozenset[str]:
    return frozenset(
        w for w in _WORD.findall(fold(question)) if w not in STOPWORDS and len(w) > 1
    )


def cluster_questions(
    questions: list[str], *, threshold: float = 0.5, top: int = 15
) -> list[GapCluster]:
    """Group questions whose folded content words overlap (Jaccard >= ``threshold``)."""
    clusters: list[tuple[frozenset[str], list[str]]] = []
    for question in questions:
        words = _words(question)
        if not words:
            continue
        for index, (key, members) in enumerate(clusters):
            if len(words & key) / len(words | key) >= threshold:
                members.append(question)
                # the key keeps the words most members share
                clusters[index] = (key | words if len(members) < 3 else key, members)
                break
        else:
            clusters.append((words, [question]))
    ranked = sorted(clusters, key=lambda c: -len(c[1]))[:top]
    return [
        GapCluster(" ".join(sorted(key)), len(members), tuple(dict.fromkeys(members))[:3])
        for key, members in ranked
    ]
