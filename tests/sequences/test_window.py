"""The Cloud API's 24-hour window, on a fake clock and a fake Graph API: a customer who
has not written in 24 hours gets the step's approved template, or, when the step has
none, the step goes to the "to do by hand" list an agent sees."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bot.clock import FakeClock
from bot.sequences import SequenceDraft, Step, StepTemplate
from bot.settings import Settings, WhatsAppCloudSettings
from bot.settings.sequences import BlockingConfig, SequencesConfig
from bot.wiring.runtime import Runtime
from tests.channels.conftest import (
    APP_SECRET,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    envelope,
    post_signed,
    text_message,
)
from tests.channels.fake_graph import FakeGraph
from tests.channels.test_cloud_webhook import until
from tests.sequences.helpers import enrollment, sent_to

NEVER_WROTE = "+525566667777"
WROTE = "+525512345678"  # the wa_id text_message() writes from


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    fake = FakeGraph()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
async def rt(  # the runtime of this module: a Cloud API number (replaces conftest's)
    tmp_path: Path, graph: FakeGraph, database_url: str, redis_url: str, fake_clock: FakeClock
) -> AsyncIterator[Runtime]:
    settings = Settings(
        env="test", data_dir=tmp_path, stalled_job_seconds=2, reconcile_interval_seconds=0.5,
        job_retry_base_seconds=1, worker_concurrency=4, log_level="WARNING",
        sequences=SequencesConfig(tick_seconds=0), blocking=BlockingConfig(check_seconds=0),
        whatsapp_cloud=WhatsAppCloudSettings(
            verify_token=VERIFY_TOKEN, app_secret=APP_SECRET, access_token="EAAG-test-token",
            phone_number_id=PHONE_NUMBER_ID, graph_url=graph.url,
        ),
    )
    runtime = await Runtime.create(settings, database_url=database_url, redis_url=redis_url,
                                   clock=fake_clock)
    runtime.start_worker()
    yield runtime
    await runtime.close()


async def test_closed_window_sends_the_template_or_leaves_the_step_to_do_by_hand(
    rt: Runtime, api: httpx.AsyncClient, graph: FakeGraph, fake_clock: FakeClock,
    headers,  # type: ignore[no-untyped-def]
) -> None:
    cloud, cloud_api = rt, api
    draft = SequenceDraft(
        name="cotización cloud", channel="whatsapp_cloud", account=PHONE_NUMBER_ID,
        steps=(
            Step(delay_minutes=0, text="Hola {nombre}, ¿viste la cotización?",
                 template=StepTemplate("seguimiento_cotizacion", "es_MX", ("nombre",))),
            Step(delay_minutes=1500, text="¿Seguimos con tu cotización, {nombre}?"),
        ),
    )
    sequence_id = (await cloud.sequences.create(draft, by=None)).id

    # never wrote: the window is closed, step 1 goes as the approved template
    first = await cloud.sequences.enroll_phone(sequence_id, phone=NEVER_WROTE, name="Ana",
                                               by=None)
    await until(lambda: _sends(graph, 1))
    template = graph.sends()[0].body
    assert template["type"] == "template" and template["to"] == NEVER_WROTE.removeprefix("+")
    assert template["template"]["name"] == "seguimiento_cotizacion"
    assert template["template"]["components"][0]["parameters"] == [{"type": "text",
                                                                    "text": "Ana"}]

    # wrote a minute ago: the window is open, step 1 goes as plain text
    await post_signed(cloud_api, envelope(messages=[text_message("hola", "wamid.in-seq")]))
    await until(lambda: _sends(graph, 2))  # the bot's answer
    second = await cloud.sequences.enroll_phone(sequence_id, phone=WROTE, name="Luis", by=None)
    await until(lambda: _sends(graph, 3))
    text = graph.sends()[2].body
    assert text["type"] == "text" and text["text"]["body"] == "Hola Luis, ¿viste la cotización?"

    # 25 hours later both windows are closed and step 2 has no template: by hand
    fake_clock.advance(minutes=1501)
    result = await cloud.sequence_ticker.tick()
    assert (result.found, result.by_hand, result.queued) == (2, 2, 0)
    assert len(graph.sends()) == 3
    for enrolled in (first, second):
        row = await enrollment(cloud, enrolled.id)
        assert (row.state, row.steps_queued, row.next_step) == ("completed", 1, 2)

    supervisor = await headers("supervisor")
    tasks = (await cloud_api.get("/api/v1/sequence-tasks", headers=supervisor)).json()
    assert sorted((t["contact_phone"], t["step"], t["reason"], t["text"]) for t in tasks) == [
        (WROTE, 2, "outside_24h_window", "¿Seguimos con tu cotización, Luis?"),
        (NEVER_WROTE, 2, "outside_24h_window", "¿Seguimos con tu cotización, Ana?"),
    ]
    done = await cloud_api.post(f"/api/v1/sequence-tasks/{tasks[0]['id']}/done",
                                headers=supervisor)
    assert done.status_code == 200 and done.json()["done_at"] is not None
    again = await cloud_api.post(f"/api/v1/sequence-tasks/{tasks[0]['id']}/done",
                                 headers=supervisor)
    assert again.status_code == 409
    left = (await cloud_api.get("/api/v1/sequence-tasks", headers=supervisor)).json()
    assert [t["id"] for t in left] == [tasks[1]["id"]]
    figures = (await cloud_api.get(f"/api/v1/sequences/{sequence_id}", headers=supervisor))
    steps = figures.json()["analytics"]
    assert [(s["step"], s["sent"], s["by_hand"]) for s in steps] == [(1, 2, 0), (2, 0, 2)]
    assert [t for t, _ in await sent_to(cloud, NEVER_WROTE)] == [
        "Hola Ana, ¿viste la cotización?"]


async def _sends(graph: FakeGraph, n: int) -> bool:
    return len(graph.sends()) >= n
