"""A customer with 200 messages, 5 voice notes, 3 images, 2 tickets, campaigns and a
follow-up sequence is
exported (everything present) and erased; afterwards no table, Redis key or S3 object
holds their number, name or words, analytics count the same, the opt-out holds and a new
message from the number starts a fresh contact with no memory."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import text

from bot.reports.analytics import Analytics, Period
from bot.wiring.runtime import Runtime
from tests.privacy.conftest import staff_headers
from tests.privacy.scan import database_hits, object_hits, redis_hits, s3_objects
from tests.privacy.seeding import (
    MARK,
    NAME,
    NATIONAL,
    OTHER_NAME,
    OTHER_PHONE,
    PHONE,
    customer_says,
    seed,
    settled,
    sha,
)
from tests.prod.receiver import Receiver

NEEDLES = [NATIONAL, "Quiñones", "Valeria", MARK]


async def _report(runtime: Runtime) -> dict[str, object]:
    """Every count the analytics show (the knowledge gaps are the customers' own words,
    so they leave with the person: compared apart)."""
    today = datetime.now(ZoneInfo(runtime.settings.business_timezone)).date()
    report = await Analytics(runtime.sessions).report(
        Period(today - timedelta(days=1), today + timedelta(days=1), None,
               runtime.settings.business_timezone))
    counts = dataclasses.asdict(report)
    counts.pop("gaps")
    return counts


async def test_export_then_erase_leaves_nothing_and_keeps_counts_and_opt_out(
    cloud_runtime: Runtime, cloud_client: httpx.AsyncClient, receiver: Receiver,
    database_url: str,
) -> None:
    runtime, client = cloud_runtime, cloud_client
    admin = await staff_headers(runtime, client)
    seeded = await seed(runtime, client, admin, receiver.url)
    await customer_says(client, "hola, soy otro cliente", "wamid.other-1", wa_id="5215512349999",
                        name=OTHER_NAME)
    await settled(runtime)
    assert await runtime.redis.exists(f"atiende:mem:{seeded.conversation_id}")
    before = await _report(runtime)
    sequence_url = f"/api/v1/sequences/{seeded.sequence_id}"
    figures_before = (await client.get(sequence_url, headers=admin)).json()

    # --- export: everything present ------------------------------------------------------
    exported = await client.get(f"/api/v1/contacts/{PHONE}/export", headers=admin)
    assert exported.status_code == 200, exported.text
    document = exported.json()
    data = document["data"]
    assert document["contact"]["phone_e164"] == PHONE and document["contact"]["name"] == NAME
    inbound = [m for m in data["messages"] if m["direction"] == "in"]
    assert sum(1 for m in inbound if m["kind"] == "text" and MARK in (m["text"] or "")) >= 200
    assert [m["kind"] for m in inbound].count("voice") == 5
    assert [m["kind"] for m in inbound].count("image") == 3
    assert all(MARK in m["transcript"] for m in inbound if m["kind"] == "voice")
    assert any(m["author"] == "agent" for m in data["messages"])
    assert len(data["handoff_tickets"]) == 2
    assert [n["text"] for n in data["conversation_notes"]] == [f"{NAME} pide descuento {MARK}"]
    assert {lb["label"] for lb in data["conversation_labels"]} == {"vip", f"{MARK}-cliente"}
    assert len(data["campaign_recipients"]) == 2  # the Cloud campaign and the simulated one
    assert len(data["contact_list_entries"]) == 1
    assert [r["reason"] for r in data["contact_lists"][0]["rows"]] == ["duplicate"]
    assert OTHER_PHONE not in json.dumps(data["contact_lists"])  # only theirs
    [enrollment] = data["sequence_enrollments"]
    assert (enrollment["name"], enrollment["phone_e164"]) == (NAME, PHONE)
    assert enrollment["fields"] == {"poliza": f"POL-{MARK}-seq"}
    assert enrollment["state"] == "active"
    [task] = data["sequence_sends"]
    assert (task["step"], task["kind"]) == (0, "manual") and NAME in task["text"]
    assert len(data["llm_calls"]) == 3 and len(data["transcriptions"]) == 5
    assert len(data["webhook_deliveries"]) >= 200
    assert {a["action"] for a in data["audit_log"]} >= {
        "conversation.claim", "conversation.reply", "conversation.note", "conversation.resolve"}
    assert len(document["media"]) == 8

    archive = await client.get(f"/api/v1/contacts/{PHONE}/export/archive", headers=admin)
    assert archive.status_code == 200, archive.text
    assert archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        inside = json.loads(zipped.read("export.json"))
        for item in inside["media"]:
            assert sha(zipped.read(item["archive_path"])) == sha(seeded.media[item["key"]])
    assert {i["key"] for i in inside["media"]} == set(seeded.media)

    # --- erase -------------------------------------------------------------------------
    erased = await client.delete(f"/api/v1/contacts/{PHONE}", headers=admin)
    assert erased.status_code == 200, erased.text
    result = erased.json()
    assert result["erased"] is True and result["complete"] is True
    assert result["contact_id"] == str(seeded.contact_id)
    assert result["messages"] >= 208 and result["media_objects"] == 8
    assert result["handoff_tickets"] == 2 and result["opt_out_kept"] is True
    assert len(result["also_erased"]) == 1  # the simulator's contact of the same number

    assert database_hits(database_url, NEEDLES) == []
    assert await redis_hits(runtime.redis, NEEDLES) == []
    objects = s3_objects(runtime.settings.media)
    assert not set(seeded.media) & set(objects)
    assert object_hits(objects, NEEDLES) == []
    # nothing of anyone else went with them
    assert database_hits(database_url, [OTHER_PHONE[3:], "Otrocliente"])

    after = await _report(runtime)
    assert after == before
    # the sequence's figures count the same; the enrollment stopped, without the person
    figures_after = (await client.get(sequence_url, headers=admin)).json()
    def sent(figures: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in step.items() if k != "stopped"}
                for step in figures["analytics"]]

    assert sent(figures_after) == sent(figures_before)
    assert sum(s["stopped"] for s in figures_after["analytics"]) == 1 + sum(
        s["stopped"] for s in figures_before["analytics"])
    assert figures_before["enrollments"]["active"] == 1
    assert figures_after["enrollments"] == {**figures_before["enrollments"], "active": 0,
                                            "stopped": figures_before["enrollments"]["stopped"] + 1}
    listed = (await client.get(f"{sequence_url}/enrollments", headers=admin)).json()
    assert [(e["state"], e["stop_reason"]) for e in listed] == [("stopped", "erased")]
    assert result["sequence_enrollments"] == 1 and result["sequence_sends"] == 1

    # who erased whom and when, without the erased data
    async with runtime.sessions() as s:
        entry = (await s.execute(text(
            "SELECT actor_email, target, details FROM audit_log WHERE action = 'contacts.erase' "
            "AND target = :t"), {"t": f"contact:{seeded.contact_id}"})).one()
    assert entry.actor_email.startswith("admin-") and entry.details["erasure_id"]

    # the number is gone: export and erase say so
    gone = await client.get(f"/api/v1/contacts/{PHONE}/export", headers=admin)
    assert gone.status_code == 404, gone.text
    again = await client.delete(f"/api/v1/contacts/{PHONE}", headers=admin)
    assert again.status_code == 404 and "already erased" in again.json()["detail"]

    # the opt-out holds: a new cartera leaves the number out
    cartera = await runtime.campaigns.import_list(
        name="otra", data=f"telefono,nombre\n{NATIONAL},X\n".encode(), created_by=None)
    assert cartera.accepted == 0 and cartera.rejected[0]["reason"] == "opted_out"

    # a new message from the number starts a fresh contact, opted out, with no memory
    await customer_says(client, "hola de nuevo", "wamid.after-1", name="Vale")
    await settled(runtime)
    async with runtime.sessions() as s:
        fresh = (await s.execute(text(
            "SELECT c.id, c.opted_out, v.id AS conversation_id FROM contacts c "
            "JOIN conversations v ON v.contact_id = c.id WHERE c.phone_e164 = :p"),
            {"p": PHONE})).one()
    assert fresh.id != seeded.contact_id and fresh.opted_out is True
    assert fresh.conversation_id != seeded.conversation_id
    turns = await runtime.memory.recent(fresh.conversation_id)
    assert [t.text for t in turns if t.role == "customer"] == ["hola de nuevo"]
