"""A customer with a full history, built through the real paths where they exist (signed
Cloud API webhooks, the pipeline, the agents' API, campaigns, a follow-up sequence,
webhooks); the voice notes,
images and LLM call records are written the way the pipeline writes them (transcribing
five notes with Whisper would only slow the test down)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import text

from bot.campaigns import CampaignDraft
from bot.messages import MessageKind
from bot.wiring.runtime import Runtime
from tests.campaigns.helpers import ALWAYS, FAST
from tests.channels.conftest import PHONE_NUMBER_ID, envelope, post_signed, text_message

PHONE = "+525512340001"  # what Atiende stores
WA_ID = "5215512340001"  # what WhatsApp sends (the old +521 form)
NATIONAL = "5512340001"  # in every form of the number
NAME = "Valeria Quiñones"
MARK = "zafiro"  # in every text the customer (or staff about them) wrote
OTHER_PHONE = "+525512349999"
OTHER_NAME = "Rogelio Otrocliente"
CLOUD = "whatsapp_cloud"


@dataclass
class Seeded:
    contact_id: uuid.UUID
    conversation_id: uuid.UUID
    media: dict[str, bytes] = field(default_factory=dict)  # key -> bytes
    inbound_texts: int = 0
    sequence_id: str = ""


def png_with(marker: str) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"tEXt", b"Comment\x00" + marker.encode())
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def ogg_with(marker: str) -> bytes:
    return b"OggS\x00\x02" + b"\x00" * 20 + b"OpusHead" + marker.encode() + b"\x00" * 200


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 64 * 1024):
        yield data[start:start + 64 * 1024]


async def customer_says(client: httpx.AsyncClient, body: str, wamid: str, *,
                        wa_id: str = WA_ID, name: str = NAME) -> None:
    response = await post_signed(client, envelope(
        messages=[text_message(body, wamid, wa_id=wa_id)], name=name, wa_id=wa_id))
    assert response.status_code == 200, response.text


async def settled(runtime: Runtime, *, timeout: float = 180) -> None:
    """Every inbound message processed and every reply handed to the channel."""
    deadline = asyncio.get_running_loop().time() + timeout
    quiet, seen = 0, -1
    while True:
        async with runtime.sessions() as s:
            left = await s.scalar(text(
                "SELECT count(*) FROM messages WHERE (direction = 'in' AND status = 'received') "
                "OR (direction = 'out' AND status IN ('pending', 'sending') "
                "AND author <> 'campaign')"))
            total = await s.scalar(text("SELECT count(*) FROM messages"))
        # nothing waiting, and no new row for a few polls: a webhook accepted a moment ago
        # may not be stored yet
        quiet = quiet + 1 if not left and total == seen else 0
        seen = total or 0
        if quiet >= 3:
            return
        if asyncio.get_running_loop().time() > deadline:
            async with runtime.sessions() as s:
                waiting = (await s.execute(text(
                    "SELECT direction, author, status, count(*) FROM messages WHERE "
                    "status IN ('received', 'pending', 'sending') GROUP BY 1, 2, 3"))).all()
            raise AssertionError(f"{left} messages still waiting: {waiting}")
        await asyncio.sleep(0.2)


async def seed(
    runtime: Runtime, client: httpx.AsyncClient, admin: dict[str, str], hook_url: str, *,
    texts: int = 200, voices: int = 5, images: int = 3,
) -> Seeded:
    response = await client.post("/api/v1/webhooks", headers=admin, json={
        "url": hook_url, "secret": "a-long-random-secret-for-tests",
        "events": ["message.created", "conversation.escalated", "conversation.claimed",
                   "conversation.resolved"]})
    assert response.status_code in (200, 201), response.text
    await _campaigns(runtime)
    sequence_id = await _sequence(runtime, client, admin)
    for i in range(texts):
        await customer_says(client, f"hola, pregunta {i} sobre mi póliza {MARK}-{i}",
                            f"wamid.seed-{i}")
    await settled(runtime)
    async with runtime.sessions() as s:
        row = (await s.execute(text(
            "SELECT c.id AS contact_id, v.id AS conversation_id FROM contacts c "
            "JOIN conversations v ON v.contact_id = c.id "
            "WHERE c.phone_e164 = :p AND v.channel = :ch"), {"p": PHONE, "ch": CLOUD})).one()
    seeded = Seeded(row.contact_id, row.conversation_id, inbound_texts=texts,
                    sequence_id=sequence_id)
    await _agent_work(runtime, client, admin, seeded)
    await _media(runtime, seeded, voices=voices, images=images)
    await _llm_calls(runtime, seeded)
    return seeded


async def _campaigns(runtime: Runtime) -> None:
    """A cartera with the customer (and a duplicate row of them, and someone else), one
    campaign on the Cloud number and one simulated; both released at once."""
    csv = ("telefono,nombre,poliza\n"
           f"{NATIONAL},{NAME},POL-{MARK}\n"
           f"55 1234 0001,{NAME} bis,POL-{MARK}-2\n"
           f"{OTHER_PHONE[3:]},{OTHER_NAME},POL-OTRO\n").encode()
    cartera = await runtime.campaigns.import_list(name="renovaciones", data=csv, created_by=None)
    assert cartera.accepted == 2, cartera
    for channel, account, template in ((CLOUD, PHONE_NUMBER_ID, "renovacion"),
                                       ("simulator", "simulator", None)):
        draft = CampaignDraft(
            name=f"renovación {channel}", list_id=cartera.id,
            variants=["Hola {nombre}, tu póliza {poliza} vence pronto."],
            channel=channel, account=account, window=ALWAYS, pacing=FAST,
            template_name=template, template_params=["nombre"] if template else [],
        )
        campaign = await runtime.campaigns.create(draft, created_by=None)
        await runtime.campaigns.launch(campaign.id, by=None)
    for _ in range(200):  # the worker's ticks release both
        async with runtime.sessions() as s:
            waiting = await s.scalar(text(
                "SELECT count(*) FROM campaign_recipients WHERE status = 'pending'"))
        if not waiting:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("campaign messages were not released")


async def _sequence(runtime: Runtime, client: httpx.AsyncClient, admin: dict[str, str]) -> str:
    """A follow-up sequence on the Cloud number: the customer enrolled (with their name and
    a field) before writing, so step 1 (no template) is a task to do by hand that quotes
    them; step 2 a day away (still active when they are erased: replies, an agent and the
    opt-out only pause it)."""
    created = await client.post("/api/v1/sequences", headers=admin, json={
        "name": "seguimiento póliza", "channel": CLOUD, "account": PHONE_NUMBER_ID,
        "on_reply": "continue", "on_human": "pause", "on_opt_out": "pause",
        "steps": [{"delay_minutes": 0, "text": "Hola {nombre}, ¿revisaste la póliza {poliza}?"},
                  {"delay_minutes": 1440, "text": "{nombre}, seguimos a tus órdenes"}]})
    assert created.status_code == 201, created.text
    sequence_id = str(created.json()["id"])
    enrolled = await client.post(f"/api/v1/sequences/{sequence_id}/enrollments", headers=admin,
                                 json={"phone": PHONE, "name": NAME,
                                       "fields": {"poliza": f"POL-{MARK}-seq"}})
    assert enrolled.status_code == 201, enrolled.text
    for _ in range(100):
        await runtime.sequence_ticker.tick()
        async with runtime.sessions() as s:
            sent = await s.scalar(text(
                "SELECT count(*) FROM sequence_sends WHERE sequence_id = :s"),
                {"s": sequence_id})
        if sent:
            return sequence_id
        await asyncio.sleep(0.1)
    raise AssertionError("the sequence's first step was not queued")


async def _agent_work(
    runtime: Runtime, client: httpx.AsyncClient, admin: dict[str, str], seeded: Seeded
) -> None:
    """Ticket 1 (claimed, replied, noted, labelled, resolved, rated), an opt-out, and
    ticket 2 left open."""
    cid = seeded.conversation_id
    state = await client.get(f"/api/v1/conversations/{cid}", headers=admin)
    assert state.status_code == 200, state.text
    if state.json()["conversation"]["owner"] == "bot":
        await customer_says(client, f"quiero hablar con un asesor {MARK}", "wamid.human-1")
        await settled(runtime)
    for path, body in ((f"/api/v1/conversations/{cid}/claim", None),
                       (f"/api/v1/conversations/{cid}/messages",
                        {"text": f"Hola {NAME}, reviso tu póliza {MARK}"}),
                       (f"/api/v1/conversations/{cid}/notes",
                        {"text": f"{NAME} pide descuento {MARK}"}),
                       (f"/api/v1/conversations/{cid}/resolve", None)):
        response = await client.post(path, headers=admin, json=body)
        assert response.status_code in (200, 201), (path, response.text)
    labels = await client.put(f"/api/v1/conversations/{cid}/labels", headers=admin,
                              json={"labels": ["vip", f"{MARK}-cliente"]})
    assert labels.status_code == 200, labels.text
    await settled(runtime)
    await customer_says(client, "5", "wamid.csat-1")
    await settled(runtime)
    await customer_says(client, f"BAJA, ya no me manden promociones {MARK}", "wamid.optout-1")
    await settled(runtime)
    await customer_says(client, f"quiero hablar con un asesor otra vez {MARK}", "wamid.human-2")
    await settled(runtime)
    async with runtime.sessions() as s:
        tickets = await s.scalar(text(
            "SELECT count(*) FROM handoff_tickets WHERE conversation_id = :c"), {"c": cid})
        opted = await s.scalar(text("SELECT opted_out FROM contacts WHERE id = :c"),
                               {"c": seeded.contact_id})
    assert tickets == 2 and opted is True, (tickets, opted)


async def _media(runtime: Runtime, seeded: Seeded, *, voices: int, images: int) -> None:
    """Voice notes and images as the pipeline leaves them: bytes in the media store, the
    reference and the transcript on the message, a transcription record."""
    rows: list[dict[str, Any]] = []
    for i in range(voices + images):
        voice = i < voices
        data = ogg_with(f"{NAME} {MARK} nota {i}") if voice else png_with(f"{NAME} {MARK} {i}")
        kind = MessageKind.VOICE if voice else MessageKind.IMAGE
        ref = await runtime.media.save(
            chunks(data), kind=kind, mime_type="audio/ogg" if voice else "image/png",
            filename=None if voice else f"foto-{MARK}-{i}.png")
        seeded.media[ref.key] = data
        rows.append({
            "id": uuid.uuid4(), "cid": seeded.conversation_id, "kind": kind.value,
            "pmid": f"wamid.media-{i}",
            "media": json.dumps({"key": ref.key, "mime_type": ref.mime_type, "size": ref.size,
                                 "sha256": ref.sha256, "filename": ref.filename}),
            "transcript": f"hola soy {NAME}, nota de voz {MARK} {i}" if voice else None,
            "raw": json.dumps({"from": WA_ID, "profile": {"name": NAME}}),
        })
    async with runtime.sessions() as s, s.begin():
        for row in rows:
            await s.execute(text(
                "INSERT INTO messages (id, conversation_id, direction, author, kind, channel, "
                "provider_message_id, media, transcript, raw, status, intent) VALUES (:id, "
                ":cid, 'in', 'customer', :kind, 'whatsapp_cloud', :pmid, CAST(:media AS jsonb),"
                " :transcript, CAST(:raw AS jsonb), 'processed', 'other')"), row)
            if row["kind"] == "voice":
                await s.execute(text(
                    "INSERT INTO transcriptions (message_id, conversation_id, backend, outcome, "
                    "audio_seconds, elapsed_seconds, error) VALUES (:id, :cid, "
                    "'faster-whisper', 'ok', 4.0, 0.8, :err)"),
                    {"id": row["id"], "cid": row["cid"],
                     "err": f"retry after: '{MARK}' could not be decoded"})


async def _llm_calls(runtime: Runtime, seeded: Seeded) -> None:
    async with runtime.sessions() as s, s.begin():
        for i in range(3):
            attempts = [{"provider": "groq", "model": "llama", "latency_ms": 5000.0,
                         "outcome": "timeout", "error": f"prompt echo: {NAME} {MARK}"}]
            await s.execute(text(
                "INSERT INTO llm_calls (purpose, model_group, answered_by, provider, model, "
                "outcome, latency_ms, prompt_tokens, completion_tokens, cost_usd, error, "
                "attempts, conversation_id) VALUES ('answer', 'primary', 'backup', 'openai', "
                "'gpt-4o-mini', 'fallback', 120.5, 300, 40, 0.0004, :err, "
                "CAST(:attempts AS jsonb), :cid)"),
                {"err": f"content echo {NAME} {MARK} {i}", "attempts": json.dumps(attempts),
                 "cid": seeded.conversation_id})


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
