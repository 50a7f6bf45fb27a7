"""Bad input: unknown numbers, erasing twice, erasing while the customer writes or an agent
replies, enrolling an erased conversation in a sequence, a 16 MB document in an export,
the media store down mid-erasure, roles."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import uuid
import zipfile

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from bot.media.s3 import S3MediaStore
from bot.messages import MessageKind
from bot.metrics import Metrics
from bot.privacy import CustomerRef, Eraser, PrivacyMetrics
from bot.settings import Settings
from bot.settings.media import MediaSettings
from bot.settings.privacy import PrivacySettings
from bot.wiring.runtime import Runtime
from tests.conftest import ask
from tests.privacy.conftest import staff_headers
from tests.privacy.seeding import chunks, ogg_with

SIM = "+525598760001"


async def _sim_customer(client: httpx.AsyncClient, phone: str = SIM, n: int = 3) -> str:
    for i in range(n):
        await ask(client, f"hola mensaje {i}", phone=phone, name="Pepa Pruebas")
    return f"sim:{phone}"


async def test_unknown_malformed_and_not_admin(runtime: Runtime, client: httpx.AsyncClient) -> None:
    admin = await staff_headers(runtime, client)
    agent = await staff_headers(runtime, client, "agent")
    unknown = await client.delete("/api/v1/contacts/+525500000000", headers=admin)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "no customer is stored under +525500000000"
    for path in ("/api/v1/contacts/+525500000000/export",
                 f"/api/v1/contacts/{uuid.uuid4()}/export/archive"):
        assert (await client.get(path, headers=admin)).status_code == 404
    bad = await client.delete("/api/v1/contacts/hola-que-tal", headers=admin)
    assert bad.status_code == 422 and "invalid phone number" in bad.json()["detail"][0]["msg"]
    key = await _sim_customer(client)
    assert (await client.delete(f"/api/v1/contacts/{key}", headers=agent)).status_code == 403
    assert (await client.get(f"/api/v1/contacts/{key}/export")).status_code == 401
    assert (await client.get("/api/v1/contacts/erasures", headers=agent)).status_code == 403
    exported = await client.get(f"/api/v1/contacts/{key}/export", headers=admin)
    assert exported.status_code == 200 and exported.json()["contact"]["name"] == "Pepa Pruebas"
    # both are in the API docs
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "get" in paths["/api/v1/contacts/{phone}/export"]
    assert "delete" in paths["/api/v1/contacts/{phone}"]


async def test_erasing_twice_says_when_and_erasing_by_contact_id(
    runtime: Runtime, client: httpx.AsyncClient,
) -> None:
    admin = await staff_headers(runtime, client)
    key = await _sim_customer(client)
    first = await client.delete(f"/api/v1/contacts/{key}", headers=admin)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["erased"] is True and body["messages"] >= 3 and body["complete"] is True
    second = await client.delete(f"/api/v1/contacts/{key}", headers=admin)
    assert second.status_code == 404
    assert "already erased on" in second.json()["detail"]
    assert body["erasure_id"] in second.json()["detail"]
    by_id = await client.delete(f"/api/v1/contacts/{body['contact_id']}", headers=admin)
    assert by_id.status_code == 404 and "already erased" in by_id.json()["detail"]
    log = await client.get("/api/v1/contacts/erasures", headers=admin)
    assert [e["contact_id"] for e in log.json()] == [body["contact_id"]]
    assert log.json()[0]["actor_email"].startswith("admin-")


async def test_an_erased_conversation_cannot_be_enrolled_in_a_sequence(
    runtime: Runtime, client: httpx.AsyncClient,
) -> None:
    """Enrolling from the inbox copies the number and name into the enrollment: for an
    erased conversation that would bring them back, so it is refused with the reason."""
    admin = await staff_headers(runtime, client)
    key = await _sim_customer(client)
    async with runtime.sessions() as s:
        conversation_id = await s.scalar(text(
            "SELECT v.id FROM conversations v JOIN contacts c ON c.id = v.contact_id "
            "WHERE c.phone_e164 = :k"), {"k": key})
    created = await client.post("/api/v1/sequences", headers=admin, json={
        "name": "seguimiento", "steps": [{"delay_minutes": 60, "text": "Hola {nombre}"}]})
    assert created.status_code == 201, created.text
    assert (await client.delete(f"/api/v1/contacts/{key}", headers=admin)).status_code == 200
    refused = await client.post(f"/api/v1/conversations/{conversation_id}/sequences",
                                headers=admin, json={"sequence_id": created.json()["id"]})
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "erased" and "erased" in refused.json()["detail"]
    async with runtime.sessions() as s:
        enrolled = await s.scalar(text("SELECT count(*) FROM sequence_enrollments"))
    assert enrolled == 0


async def test_erasing_while_the_customer_writes_loses_nothing_and_mixes_nothing(
    runtime: Runtime, client: httpx.AsyncClient,
) -> None:
    admin = await staff_headers(runtime, client)
    key = await _sim_customer(client, n=2)

    async def write(i: int) -> int:
        response = await client.post("/api/v1/simulator/messages", json={
            "from": SIM, "text": f"escribiendo {i}", "message_id": f"race-{i}"})
        return response.status_code

    writers = [asyncio.create_task(write(i)) for i in range(60)]
    await asyncio.sleep(0.05)
    erased = await client.delete(f"/api/v1/contacts/{key}", headers=admin)
    statuses = await asyncio.gather(*writers)
    assert erased.status_code == 200, erased.text
    assert set(statuses) == {202}
    async with runtime.sessions() as s:
        rows = (await s.execute(text(
            "SELECT m.provider_message_id, m.text, c.erased_at IS NOT NULL AS erased, "
            "c.id AS contact_id FROM messages m JOIN conversations v ON v.id = m.conversation_id"
            " JOIN contacts c ON c.id = v.contact_id WHERE m.direction = 'in'"))).all()
    # every message written is stored once: in the erased conversation without its text,
    # or in the fresh contact's with it; never the text in the erased one
    fresh = [r for r in rows if not r.erased]
    gone = [r for r in rows if r.erased]
    assert all(r.text is None and r.provider_message_id is None for r in gone)
    assert all(r.text and r.text.startswith("escribiendo") for r in fresh)
    assert len({r.contact_id for r in fresh}) <= 1
    assert len(gone) + len(fresh) == 62
    assert {r.provider_message_id for r in fresh} <= {f"race-{i}" for i in range(60)}


async def test_erasing_while_an_agent_replies(runtime: Runtime, client: httpx.AsyncClient) -> None:
    admin = await staff_headers(runtime, client)
    outcome = await ask(client, "quiero hablar con un asesor", phone=SIM, name="Pepa Pruebas")
    cid = outcome["conversation_id"]
    claimed = await client.post(f"/api/v1/conversations/{cid}/claim", headers=admin)
    assert claimed.status_code == 200, claimed.text

    async def reply(i: int) -> httpx.Response:
        return await client.post(f"/api/v1/conversations/{cid}/messages", headers=admin,
                                 json={"text": f"respuesta del agente {i}"})

    async def note(i: int) -> httpx.Response:
        return await client.post(f"/api/v1/conversations/{cid}/notes", headers=admin,
                                 json={"text": f"nota {i}"})

    tasks = [asyncio.create_task(reply(i) if i % 2 else note(i)) for i in range(30)]
    await asyncio.sleep(0.02)
    erased = await client.delete(f"/api/v1/contacts/sim:{SIM}", headers=admin)
    answers = await asyncio.gather(*tasks)
    assert erased.status_code == 200, erased.text
    assert {r.status_code for r in answers} <= {200, 201, 409}
    refused = [r.json() for r in answers if r.status_code == 409]
    assert all(r["code"] == "erased" for r in refused)
    async with runtime.sessions() as s:
        left = await s.scalar(text(
            "SELECT count(*) FROM messages WHERE conversation_id = :c AND text IS NOT NULL"),
            {"c": cid})
        notes = await s.scalar(text(
            "SELECT count(*) FROM conversation_notes WHERE conversation_id = :c"), {"c": cid})
    assert left == 0 and notes == 0
    late = await client.post(f"/api/v1/conversations/{cid}/messages", headers=admin,
                             json={"text": "¿sigues ahí?"})
    assert late.status_code == 409 and "erased" in late.json()["detail"]
    assert (await client.get(f"/api/v1/conversations/{cid}", headers=admin)).status_code == 404


async def test_export_with_a_16_mb_document(runtime: Runtime, client: httpx.AsyncClient) -> None:
    admin = await staff_headers(runtime, client)
    outcome = await ask(client, "te mando mi contrato", phone=SIM, name="Pepa Pruebas")
    document = b"%PDF-1.7\n" + os.urandom(16 * 1024 * 1024 - 9)
    ref = await runtime.media.save(chunks(document), kind=MessageKind.DOCUMENT,
                                   mime_type="application/pdf", filename="contrato.pdf")
    async with runtime.sessions() as s, s.begin():
        await s.execute(text(
            "INSERT INTO messages (id, conversation_id, direction, author, kind, channel, media,"
            " status) VALUES (:id, :c, 'in', 'customer', 'document', 'simulator', "
            "CAST(:m AS jsonb), 'processed')"),
            {"id": uuid.uuid4(), "c": outcome["conversation_id"],
             "m": f'{{"key": "{ref.key}", "mime_type": "application/pdf", '
                  f'"size": {ref.size}, "sha256": "{ref.sha256}", "filename": "contrato.pdf"}}'})
    small = await client.get(f"/api/v1/contacts/sim:{SIM}/export", headers=admin)
    assert small.status_code == 200 and len(small.content) < 1_000_000
    archive = await client.get(f"/api/v1/contacts/sim:{SIM}/export/archive", headers=admin)
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        item = json.loads(zipped.read("export.json"))["media"][0]
        assert item["filename"] == "contrato.pdf" and item["size"] == len(document)
        assert hashlib.sha256(zipped.read(item["archive_path"])).hexdigest() == ref.sha256


async def test_a_store_down_mid_erasure_leaves_it_resumable(
    cloud_runtime: Runtime, cloud_client: httpx.AsyncClient,
) -> None:
    runtime, client = cloud_runtime, cloud_client
    admin = await staff_headers(runtime, client)
    outcome = await ask(client, "hola", phone=SIM, name="Pepa Pruebas")
    ref = await runtime.media.save(chunks(ogg_with("nota")), kind=MessageKind.VOICE,
                                   mime_type="audio/ogg")
    async with runtime.sessions() as s, s.begin():
        await s.execute(text(
            "INSERT INTO messages (id, conversation_id, direction, author, kind, channel, media,"
            " status) VALUES (:id, :c, 'in', 'customer', 'voice', 'simulator', "
            "jsonb_build_object('key', CAST(:k AS text)), 'processed')"),
            {"id": uuid.uuid4(), "c": outcome["conversation_id"], "k": ref.key})
    down = S3MediaStore(MediaSettings(
        backend="s3", s3_endpoint_url="http://127.0.0.1:9", s3_bucket="nowhere",
        s3_access_key_id="x", s3_secret_access_key="x"))
    broken = Eraser(sessions=runtime.sessions, media=down, memory=runtime.memory,
                    metrics=PrivacyMetrics(Metrics().registry), settle_seconds=0)
    from handoff.audit import Actor

    first = await broken.erase(CustomerRef(key=f"sim:{SIM}"), actor=Actor.cli(), source="cli")
    assert first.complete is False and first.media_objects == 1
    assert [x async for x in runtime.media.read(ref.key)]  # still in the bucket
    # erasing again finishes it (the database part is not done twice)
    again = await client.delete(f"/api/v1/contacts/sim:{SIM}", headers=admin)
    assert again.status_code == 200, again.text
    assert again.json()["resumed"] is True and again.json()["complete"] is True
    assert again.json()["erasure_id"] == str(first.erasure_id)
    with pytest.raises(Exception, match="no media"):
        [x async for x in runtime.media.read(ref.key)]
    third = await client.delete(f"/api/v1/contacts/sim:{SIM}", headers=admin)
    assert third.status_code == 404


def test_a_retention_of_zero_days_is_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="ATIENDE_PRIVACY__MEDIA_DAYS=0: voice notes"):
        PrivacySettings(media_days=0)
    with pytest.raises(ValidationError, match="Use 1 or more days"):
        Settings(privacy={"text_days": 0})  # type: ignore[arg-type]
    assert PrivacySettings(media_days="").media_days is None  # type: ignore[arg-type]
