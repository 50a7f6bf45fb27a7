"""Stage and channel timings reach /metrics."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import ask


async def test_stage_and_channel_send_timings_are_exported(client: httpx.AsyncClient) -> None:
    await ask(client, "hola", phone="+5215500002222")
    sent = 'atiende_channel_send_seconds_count{channel="simulator",outcome="ok"} 1.0'
    for _ in range(100):  # the reply leaves the outbox just after the message is processed
        metrics = (await client.get("/metrics")).text
        if sent in metrics:
            break
        await asyncio.sleep(0.1)
    assert 'atiende_stage_seconds_count{stage="decide"} 1.0' in metrics
    assert sent in metrics
