"""A worker killed with SIGKILL mid-campaign: the next worker resumes, nobody gets two."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select

from bot.campaigns.models import CampaignRecipient
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handoff.conversations import Message
from tests.campaigns.helpers import csv_of, launched
from tests.ops.test_crash import _worker

N = 150


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.slow
async def test_worker_killed_mid_campaign_resumes_without_sending_anyone_twice(
    settings: Settings, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    runtime = await Runtime.create(settings, database_url=database_url, redis_url=redis_url)
    try:
        campaign_id = await launched(runtime, csv_of(N))  # no worker here: only queued
        worker = _worker(database_url, redis_url, tmp_path)
        released = 0
        try:
            for _ in range(1500):
                released = _count(
                    database_url,
                    "SELECT count(*) FROM campaign_recipients WHERE status = 'queued'",
                )
                if released >= 5:
                    break
                await asyncio.sleep(0.01)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        released = _count(
            database_url, "SELECT count(*) FROM campaign_recipients WHERE status = 'queued'"
        )
        assert 0 < released < N, f"the kill came at {released}/{N}: proves nothing"

        restarted = _worker(database_url, redis_url, tmp_path)
        try:
            for _ in range(900):
                done = _count(
                    database_url,
                    "SELECT count(*) FROM messages WHERE author = 'campaign' "
                    "AND status = 'sent'",
                )
                if done >= N:
                    break
                await asyncio.sleep(0.1)
        finally:
            os.killpg(restarted.pid, signal.SIGTERM)
            restarted.wait(timeout=20)

        async with runtime.sessions() as s:
            per_conversation = Counter(
                (await s.execute(select(Message.conversation_id)
                                 .where(Message.author == "campaign"))).scalars()
            )
            statuses = Counter(
                (await s.execute(select(Message.status)
                                 .where(Message.author == "campaign"))).scalars()
            )
            linked = (
                await s.execute(
                    select(func.count(func.distinct(CampaignRecipient.message_id)))
                    .where(CampaignRecipient.campaign_id == campaign_id,
                           CampaignRecipient.status == "queued")
                )
            ).scalar_one()
        assert len(per_conversation) == N and set(per_conversation.values()) == {1}
        assert statuses == {"sent": N}
        assert linked == N
        view = await runtime.campaigns.get(campaign_id)
        assert view.status == "completed" and view.progress.sent == N
    finally:
        await runtime.close()
