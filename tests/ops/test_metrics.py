"""Stage and channel timings reach /metrics."""

from __future__ import annotations

import httpx

from tests.conftest import ask


async def test_stage_and_channel_send_timings_are_exported(client: httpx.AsyncClient) -> None:
    await ask(client, "hola", phone="+5215500002222")
    metrics = (await client.get("/metrics")).text
    assert 'atiende_stage_seconds_count{stage="decide"} 1.0' in metrics
    assert 'atiende_channel_send_seconds_count{channel="simulator",outcome="ok"} 1.0' in metrics
