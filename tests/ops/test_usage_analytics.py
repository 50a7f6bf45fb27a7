"""LLM usage and cost per provider/model, and transcription volume per backend, from data
the pipeline really recorded: the LLM chain and the transcription provider are scripted
OpenAI-compatible servers on 127.0.0.1, customers write and send a voice note through
the simulator; the report, its filters, the CSV export and the dashboard show it."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from bot.llm.scripted import Behaviour, ScriptedServer
from bot.settings import Settings
from bot.settings.speech import SpeechSettings
from bot.speech.audio import decode
from bot.speech.synth import synthesize_voice_note
from bot.wiring.runtime import Runtime
from handoff.roles import Role
from knowledge.demo import load_demo_if_empty
from knowledge.embeddings import Embedder
from tests.conftest import app_client, ask
from tests.voice.conftest import send_voice

QUESTIONS = [
    "no entiendo que es eso del deducible jaja",
    "abren los sabados?",
    "se puede pagar en oxxo o nomas con tarjeta",
]
TRANSCRIPT = "oiga como le hago para reportar un choque"


@pytest.fixture
def providers() -> Iterator[dict[str, ScriptedServer]]:
    started = {
        "broken": ScriptedServer(default=Behaviour.error(500)).start(),
        "good": ScriptedServer(default=Behaviour.answer("Con gusto te ayudo.")).start(),
        "speech": ScriptedServer(default=Behaviour.answer(TRANSCRIPT)).start(),
    }
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture
async def usage_client(
    settings: Settings, database_url: str, redis_url: str, kb_embedder: Embedder,
    providers: dict[str, ScriptedServer], tmp_path: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    def deployment(name: str, server: ScriptedServer, model: str) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {
            "model": model, "api_base": server.url, "api_key": f"sk-{name}-1234", "timeout": 3}}

    config = tmp_path / "llm.yaml"
    config.write_text(yaml.safe_dump({
        "model_list": [deployment("primary", providers["broken"], "openai/gpt-4o"),
                       deployment("backup", providers["good"], "openai/gpt-4o-mini")],
        # every call tries the broken provider first (no cooldown), then falls back
        "router_settings": {"fallbacks": [{"primary": ["backup"]}], "num_retries": 0,
                            "allowed_fails": 1000},
        "atiende": {"answer_model": "primary", "budget_seconds": 5},
    }))
    speech = SpeechSettings(
        provider_model="openai/whisper-1", provider_api_base=providers["speech"].url,
        provider_api_key="sk-voz-1234", provider_timeout_seconds=5, warm_at_start=False,
    )
    configured = settings.model_copy(update={"llm_config": config, "speech": speech})
    runtime = await Runtime.create(
        configured, database_url=database_url, redis_url=redis_url, embedder=kb_embedder
    )
    runtime.start_worker()
    await load_demo_if_empty(runtime.knowledge)

    try:
        async with app_client(runtime) as c:
            yield c, runtime
    finally:
        await runtime.close()


async def test_llm_usage_and_transcriptions_are_reported_from_recorded_data(
    usage_client: tuple[httpx.AsyncClient, Runtime], providers: dict[str, ScriptedServer],
    database_url: str, tmp_path: Path,
) -> None:
    client, runtime = usage_client
    for n, question in enumerate(QUESTIONS):
        outcome = await ask(client, question, phone=f"+52155500000{n:02d}")
        assert outcome["status"] == "processed" and outcome["replies"], outcome
    note = synthesize_voice_note("Oiga, ¿cómo le hago para reportar un choque?",
                                 tmp_path / "nota.ogg")
    audio = note.read_bytes()
    _, voice = await send_voice(client, audio, phone="+5215599990000")
    assert voice is not None and voice["transcript"] == TRANSCRIPT, voice
    seconds = decode(audio, mime_type="audio/ogg", max_seconds=600).duration
    await runtime.llm.calls.flush()

    with psycopg.connect(database_url) as conn:
        calls, answered, cost, tokens = conn.execute(
            "SELECT count(*), count(model), sum(cost_usd), sum(prompt_tokens) FROM llm_calls "
            "WHERE conversation_id IS NOT NULL").fetchone() or (0, 0, 0, 0)
    assert calls >= len(QUESTIONS) and answered == calls  # the backup answered every call
    assert providers["broken"].calls == calls and providers["good"].calls == calls

    # (not the auth_headers fixture: its runtime would run a second worker on this database)
    await runtime.auth.create_user(email="dueña@example.mx", name="Dueña", role=Role.ADMIN,
                                   password="contraseña-segura")
    login = await client.post("/api/v1/auth/login", json={
        "email": "dueña@example.mx", "password": "contraseña-segura"})
    admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
    report = (await client.get("/api/v1/admin/analytics", headers=admin)).json()
    llm = report["llm"]
    assert (llm["calls"], llm["answered"], llm["unanswered"]) == (calls, calls, 0)
    assert llm["by_purpose"].get("answer", 0) >= 1
    assert abs(llm["cost_usd"] - cost) < 1e-9 and cost > 0
    models = {(m["provider"], m["model"]): m for m in llm["models"]}
    good, broken = models[("openai", "openai/gpt-4o-mini")], models[("openai", "openai/gpt-4o")]
    assert good["answered"] == calls and good["prompt_tokens"] == tokens == 50 * calls
    assert good["completion_tokens"] > 0 and good["cost_usd"] > 0 and good["errors"] == 0
    assert broken["answered"] == 0 and broken["errors"] == calls  # each fallback's 500
    [speech] = report["transcriptions"]
    assert (speech["backend"], speech["notes"], speech["failed"]) == (
        "provider:openai/whisper-1", 1, 0)
    assert abs(speech["audio_minutes"] - seconds / 60) < 0.01

    # filters: the channel the conversations came in on, another channel, another period
    def fetch(**params: str) -> Any:
        return client.get("/api/v1/admin/analytics", headers=admin, params=params)

    same = (await fetch(channel="simulator")).json()
    assert same["llm"]["calls"] == calls and same["transcriptions"] == report["transcriptions"]
    other = (await fetch(channel="whatsapp_cloud")).json()
    assert other["llm"]["calls"] == 0 and other["llm"]["models"] == []
    assert other["transcriptions"] == []
    past = datetime.now(UTC).date() - timedelta(days=400)
    old = (await fetch(start=past.isoformat(), end=(past + timedelta(days=3)).isoformat()))
    assert old.json()["llm"]["calls"] == 0 and old.json()["transcriptions"] == []

    def table(text: str) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(text)))

    exported = await client.get("/admin/analytics/export.csv", headers=admin,
                                params={"table": "llm"})
    assert exported.status_code == 200, exported.text
    rows = {r["model"]: r for r in table(exported.text)}
    assert int(rows["openai/gpt-4o-mini"]["answered"]) == calls
    assert int(rows["openai/gpt-4o"]["errors"]) == calls
    exported = await client.get("/admin/analytics/export.csv", headers=admin,
                                params={"table": "transcriptions", "channel": "simulator"})
    [row] = table(exported.text)
    assert row["backend"] == "provider:openai/whisper-1" and row["notes"] == "1"

    for lang, heading in (("es", "Uso de LLM y costo por proveedor"),
                          ("en", "LLM usage and cost per provider")):
        page = await client.get("/admin/analytics", headers=admin, params={"lang": lang})
        assert page.status_code == 200
        html = page.text
        assert heading in html and 'id="llm-models"' in html and 'id="voice-backends"' in html
        assert "openai · openai/gpt-4o-mini" in html and "provider:openai/whisper-1" in html
        assert f'id="kpi-llm-calls">{calls}<' in html
