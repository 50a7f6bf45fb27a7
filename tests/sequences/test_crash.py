"""A worker killed (SIGKILL) mid-tick: the next worker resumes, no contact gets a step twice
(counted at a fake Graph API, the provider), none is lost."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from bot.bench.sequences_kill import (
    INTERRUPTED,
    QUEUED,
    SENT,
    CountingGraph,
    count,
    setup_due,
    spawn_worker,
)

N = 600


@pytest.mark.slow
async def test_a_worker_killed_mid_tick_sends_nothing_twice_and_loses_nothing(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    graph = CountingGraph()
    graph.start()
    try:
        setup_due(database_url, N)
        worker = spawn_worker(database_url, redis_url, tmp_path / "one", graph.url)
        try:
            for _ in range(3000):
                if count(database_url, QUEUED) >= N // 4:
                    break
                await asyncio.sleep(0.01)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        queued = count(database_url, QUEUED)
        assert 0 < queued < N, f"the kill came at {queued}/{N}: proves nothing"

        # the row in flight at the kill is settled once its claim is older than this (120 s
        # by default, ATIENDE_SEND_CLAIM_SECONDS); the Graph fake answers at once, so 8 s
        # is far longer than any live send here
        restarted = spawn_worker(database_url, redis_url, tmp_path / "two", graph.url,
                                 send_claim_seconds=8)
        try:
            for _ in range(1200):
                if count(database_url, SENT) + count(database_url, INTERRUPTED) >= N:
                    break
                await asyncio.sleep(0.1)
        finally:
            os.killpg(restarted.pid, signal.SIGTERM)
            restarted.wait(timeout=30)

        interrupted = count(database_url, INTERRUPTED)
        assert interrupted <= 1  # at most the one message in flight at the kill
        assert count(database_url, SENT) == N - interrupted
        assert count(database_url, QUEUED) == N  # each step written once
        assert count(database_url, "SELECT count(*) FROM sequence_enrollments "
                                   "WHERE state = 'completed'") == N
        assert max(graph.sends.values()) == 1, "someone got the step twice"
        assert len(graph.sends) >= N - interrupted, "someone never got the step"
    finally:
        graph.stop()
