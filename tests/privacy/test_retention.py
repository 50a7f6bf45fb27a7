"""Retention: what is older than its setting goes, in bounded batches, counted in the
metrics; the rows stay (analytics count the same); recent data is untouched."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import text

from bot.messages import MessageKind
from bot.metrics import Metrics
from bot.privacy import PrivacyMetrics, Retention
from bot.reports.analytics import Analytics, Period
from bot.reports.learning import LearningFigures
from bot.settings import Settings
from bot.settings.privacy import PrivacySettings
from bot.wiring.runtime import Runtime
from knowledge.embeddings import Embedder
from tests.privacy.seeding import chunks, ogg_with, png_with


@pytest.fixture
async def quiet_runtime(
    settings: Settings, database_url: str, redis_url: str, kb_embedder: Embedder
) -> AsyncIterator[Runtime]:
    """No worker: the periodic job must not run beside the test's own runs."""
    small = settings.model_copy(update={"privacy": PrivacySettings(
        media_days=90, transcript_days=365, text_days=730, batch_size=3,
        batch_pause_seconds=0)})
    rt = await Runtime.create(small, database_url=database_url, redis_url=redis_url,
                              embedder=kb_embedder)
    yield rt
    await rt.close()


async def _history(runtime: Runtime) -> dict[str, list[uuid.UUID]]:
    """One conversation with messages of several ages (days ago): media, transcripts,
    texts, notes and webhook payloads."""
    contact, conversation = uuid.uuid4(), uuid.uuid4()
    made: dict[str, list[uuid.UUID]] = {"old_media": [], "new_media": [], "old_voice": [],
                                        "mid_voice": [], "old_text": [], "new_text": []}
    rows = []
    for group, days, kind in (("old_media", 100, "image"), ("new_media", 10, "image"),
                              ("old_voice", 800, "voice"), ("mid_voice", 400, "voice"),
                              ("old_text", 800, "text"), ("new_text", 5, "text")):
        for i in range(4):
            media = None
            if kind != "text":
                data = png_with(f"x{i}") if kind == "image" else ogg_with(f"x{i}")
                ref = await runtime.media.save(
                    chunks(data), kind=MessageKind(kind),
                    mime_type="image/png" if kind == "image" else "audio/ogg",
                    filename=f"f{i}.png" if kind == "image" else None)
                media = ref.key
            message_id = uuid.uuid4()
            made[group].append(message_id)
            rows.append({"id": message_id, "c": conversation, "kind": kind, "days": days,
                         "key": media, "t": f"texto {group} {i}" if kind == "text" else None,
                         "tr": f"transcripción {i}" if kind == "voice" else None})
    async with runtime.sessions() as s, s.begin():
        await s.execute(text("INSERT INTO contacts (id, phone_e164) VALUES (:c, '+525511119999')"),
                        {"c": contact})
        await s.execute(text(
            "INSERT INTO conversations (id, contact_id, channel, account) "
            "VALUES (:id, :c, 'simulator', 'simulator')"), {"id": conversation, "c": contact})
        for row in rows:
            await s.execute(text(
                "INSERT INTO messages (id, conversation_id, direction, author, kind, channel, "
                "text, transcript, media, raw, status, intent, created_at) VALUES (:id, :c, "
                "'in', 'customer', :kind, 'simulator', :t, :tr, CASE WHEN CAST(:key AS text) "
                "IS NULL THEN NULL ELSE jsonb_build_object('key', CAST(:key AS text), "
                "'mime_type', 'x', 'size', 10, 'filename', 'f.png') END, "
                "CASE WHEN CAST(:kind AS varchar) = 'text' THEN '{\"from\": \"x\"}'::jsonb "
                "END, 'processed', 'greeting', now() - make_interval(days => :days))"), row)
        for days in (800, 800, 3):
            await s.execute(text(
                "INSERT INTO conversation_notes (id, conversation_id, author_id, text, "
                "created_at) VALUES (gen_random_uuid(), :c, gen_random_uuid(), 'nota', "
                "now() - make_interval(days => :d))"), {"c": conversation, "d": days})
        await _sequence_tasks(s, contact, conversation)
    return made


async def _sequence_tasks(s: Any, contact: uuid.UUID, conversation: uuid.UUID) -> None:
    """Steps left to do by hand (their text quotes the customer), 800, 800 and 3 days old."""
    sequence, enrollment = uuid.uuid4(), uuid.uuid4()
    await s.execute(text(
        "INSERT INTO sequences (id, name, channel, account, timezone, steps, on_reply, "
        "on_human, on_opt_out, status) VALUES (:id, 'seguimiento', 'simulator', 'simulator', "
        "'America/Mexico_City', '[]'::jsonb, 'stop', 'pause', 'stop', 'active')"),
        {"id": sequence})
    await s.execute(text(
        "INSERT INTO sequence_enrollments (id, sequence_id, contact_id, conversation_id, "
        "phone_e164, fields, state, source, enrolled_at, enrolled_seq, next_step, "
        "steps_queued) VALUES (:id, :s, :c, :v, '+525511119999', '{}'::jsonb, 'completed', "
        "'api', now() - interval '801 days', 0, 3, 3)"),
        {"id": enrollment, "s": sequence, "c": contact, "v": conversation})
    for step, days in enumerate((800, 800, 3)):
        await s.execute(text(
            "INSERT INTO sequence_sends (id, enrollment_id, sequence_id, conversation_id, step,"
            " kind, text, reason, created_at) VALUES (gen_random_uuid(), :e, :s, :v, :step, "
            "'manual', 'Hola Ana, ¿seguimos?', 'outside_24h_window', "
            "now() - make_interval(days => :d))"),
            {"e": enrollment, "s": sequence, "v": conversation, "step": step, "d": days})


async def _counts(runtime: Runtime) -> tuple[object, ...]:
    today = datetime.now(UTC).date() + timedelta(days=1)
    report = await Analytics(runtime.sessions).report(Period(date(2020, 1, 1), today))
    return (report.inbound, report.active_conversations, report.hours, report.intents)


async def test_retention_purges_old_data_in_batches_and_keeps_the_counts(
    quiet_runtime: Runtime,
) -> None:
    runtime = quiet_runtime
    made = await _history(runtime)
    before = await _counts(runtime)
    async with runtime.sessions() as s:
        old_keys = (await s.execute(text(
            "SELECT media->>'key' FROM messages WHERE id = ANY(:ids)"),
            {"ids": made["old_media"] + made["old_voice"] + made["mid_voice"]})).scalars().all()

    report = await runtime.privacy.retention.run()
    assert report.purged == {"media": 12, "transcripts": 8, "texts": 4, "notes": 2,
                             "webhook_payloads": 0, "sequence_tasks": 2, "suggestions": 0}
    assert not report.more and not report.failed
    for key in old_keys:
        with pytest.raises(Exception, match="no media"):
            [x async for x in runtime.media.read(key)]
    async with runtime.sessions() as s:
        rows = {r.id: r for r in (await s.execute(text(
            "SELECT id, kind, text, transcript, media, raw, xmin::text AS tx FROM messages")))}
        notes = await s.scalar(text("SELECT count(*) FROM conversation_notes"))
        tasks = (await s.execute(text(
            "SELECT step, text FROM sequence_sends ORDER BY step"))).all()
    for message_id in made["old_media"]:
        media = rows[message_id].media
        assert "key" not in media and "filename" not in media and media["purged_at"]
    assert all(rows[m].media.get("key") for m in made["new_media"])
    assert all(rows[m].transcript is None for m in made["old_voice"] + made["mid_voice"])
    assert all(rows[m].text is None and rows[m].raw is None for m in made["old_text"])
    assert all(rows[m].text for m in made["new_text"])
    assert notes == 1
    assert [tuple(t) for t in tasks] == [(0, None), (1, None), (2, "Hola Ana, ¿seguimos?")]
    # bounded batches of 3, oldest first: the 4 oldest texts went in two transactions,
    # and the 4 newest old images (rows 10-12 of 12 media, and row 9) in two too
    assert len({rows[m].tx for m in made["old_text"]}) == 2
    assert len({rows[m].tx for m in made["old_media"]}) == 2
    assert await _counts(runtime) == before
    metrics = generate_latest(runtime.metrics.registry).decode()
    assert 'atiende_retention_purged_total{what="media"} 12.0' in metrics
    assert 'atiende_retention_purged_total{what="transcripts"} 8.0' in metrics
    assert (await runtime.privacy.retention.run()).purged == {
        "media": 0, "transcripts": 0, "texts": 0, "notes": 0, "webhook_payloads": 0,
        "sequence_tasks": 0, "suggestions": 0}


async def _suggestions(runtime: Runtime) -> dict[str, uuid.UUID]:
    """A suggestion of each kind with its customers' questions, asked 800 or 5 days ago:
    pending (one old and one recent question; two old ones), dismissed and approved (one
    old question each), every one with a draft."""
    contact, conversation = uuid.uuid4(), uuid.uuid4()
    made = {"pending": uuid.uuid4(), "pending_old": uuid.uuid4(), "dismissed": uuid.uuid4(),
            "approved": uuid.uuid4()}
    asked = {"pending": (800, 5), "pending_old": (800, 800), "dismissed": (800,),
             "approved": (800,)}
    async with runtime.sessions() as s, s.begin():
        await s.execute(text("INSERT INTO contacts (id, phone_e164) VALUES (:c, '+525511118888')"),
                        {"c": contact})
        await s.execute(text(
            "INSERT INTO conversations (id, contact_id, channel, account) "
            "VALUES (:id, :c, 'simulator', 'simulator')"), {"id": conversation, "c": contact})
        for name, suggestion in made.items():
            status = name.removesuffix("_old")
            await s.execute(text(
                "INSERT INTO kb_suggestions (id, status, model, question_mean, reply_mean, items, "
                "customers, last_asked_at, draft_title, draft_body, draft_model, draft_items, "
                "article_id, decided_by, decided_at, approved_title, approved_body) VALUES ("
                ":id, CAST(:st AS varchar), 'm', '[1,0,0]', '[0,1,0]', :n, 1, "
                "now() - interval '5 days', "
                "'¿Aseguran a Nube?', 'Nube, la perrita de Ana Ruiz', 'llm', :n, "
                "CASE WHEN CAST(:st AS varchar) = 'approved' THEN 'seguro-mascotas' END, "
                "CASE WHEN CAST(:st AS varchar) <> 'pending' THEN 'admin@example.mx' END, "
                "CASE WHEN CAST(:st AS varchar) <> 'pending' THEN now() - interval '1 day' END, "
                "CASE WHEN CAST(:st AS varchar) = 'approved' THEN 'Seguro de mascotas' END, "
                "CASE WHEN CAST(:st AS varchar) = 'approved' THEN 'Perros y gatos.' END)"),
                {"id": suggestion, "st": status, "n": len(asked[name])})
            for days in asked[name]:
                await s.execute(text(
                    "INSERT INTO kb_suggestion_items (suggestion_id, origin, conversation_id, "
                    "contact_id, question, replies, source_ids, question_vec, reply_vec, model, "
                    "asked_at) VALUES (:s, 'handoff', :v, :c, :q, "
                    "'[\"Sí, a Nube también\"]'::jsonb, '{}', :qv, '[0,1,0]', 'm', "
                    "now() - make_interval(days => :d))"),
                    {"s": suggestion, "v": conversation, "c": contact, "d": days,
                     "q": f"¿aseguran a mi perrita? {name} {days}",
                     "qv": "[1,0,0]" if days > 5 else "[0,0,1]"})
    return made


async def test_old_questions_leave_pending_and_dismissed_suggestions_and_figures_stay(
    quiet_runtime: Runtime,
) -> None:
    runtime = quiet_runtime
    made = await _suggestions(runtime)
    figures = LearningFigures(runtime.sessions, runtime.settings.business_timezone)
    before = await figures.figures(date(2020, 1, 1), datetime.now(UTC).date())
    assert (before.gaps_closed, before.dismissed, before.pending) == (1, 1, 2)

    report = await runtime.privacy.retention.run()
    assert report.purged["suggestions"] == 4  # in two batches of at most 3
    async with runtime.sessions() as s:
        items = sorted((str(r.suggestion_id), r.question) for r in await s.execute(text(
            "SELECT suggestion_id, question FROM kb_suggestion_items")))
        rows = {r.id: r for r in await s.execute(text(
            "SELECT id, status, items, customers, draft_title, draft_body, draft_items, "
            "question_mean::text AS q, approved_body, decided_at FROM kb_suggestions"))}
    assert items == sorted([(str(made["pending"]), "¿aseguran a mi perrita? pending 5"),
                            (str(made["approved"]), "¿aseguran a mi perrita? approved 800")])
    # a pending suggestion only old questions fed is gone; the other keeps the recent one,
    # counted and averaged from it, to be drafted again
    assert made["pending_old"] not in rows
    pending = rows[made["pending"]]
    assert (pending.items, pending.customers, pending.draft_items) == (1, 1, 0)
    assert pending.draft_title is None and pending.draft_body is None
    assert pending.q == "[0,0,1]"
    # a dismissed one stays (the figures count it) without the draft quoting them
    dismissed = rows[made["dismissed"]]
    assert dismissed.status == "dismissed" and dismissed.decided_at is not None
    assert dismissed.draft_body is None and dismissed.items == 0 and dismissed.q is None
    # an approved one is the business's knowledge now: untouched
    approved = rows[made["approved"]]
    assert approved.items == 1 and approved.draft_body == "Nube, la perrita de Ana Ruiz"
    assert approved.approved_body == "Perros y gatos."

    after = await figures.figures(date(2020, 1, 1), datetime.now(UTC).date())
    assert (after.gaps_closed, after.dismissed, after.pending) == (1, 1, 1)
    metrics = generate_latest(runtime.metrics.registry).decode()
    assert 'atiende_retention_purged_total{what="suggestions"} 4.0' in metrics
    assert (await runtime.privacy.retention.run()).purged["suggestions"] == 0


async def test_a_run_stops_at_its_budget_and_the_next_one_continues(
    quiet_runtime: Runtime,
) -> None:
    runtime = quiet_runtime
    await _history(runtime)
    retention = Retention(
        sessions=runtime.sessions, media=runtime.media, metrics=PrivacyMetrics(Metrics().registry),
        settings=runtime.settings.privacy.model_copy(update={"run_budget_seconds": 1e-9}))
    first = await retention.run()
    assert first.more and first.purged == {"media": 3}
    total = dict(first.purged)
    for _ in range(20):
        report = await retention.run()
        for k, v in report.purged.items():
            total[k] = total.get(k, 0) + v
        if not report.more:
            break
    assert total["media"] == 12 and total["transcripts"] == 8 and total["texts"] == 4
