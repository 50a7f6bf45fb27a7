"""``atiende bench pipeline`` runs end to end in both shapes (figures go to BENCHMARKS.md)."""

import asyncio
import re

import pytest

from bot.bench.pipeline import run_pipeline_bench
from bot.settings import Settings


@pytest.mark.parametrize("workers", [0, 1])
async def test_bench_pipeline_prints_the_figures_the_issue_names(workers: int) -> None:
    report = await asyncio.wait_for(
        run_pipeline_bench(
            Settings(), messages=40, conversations=8, concurrency=2, batch=4, workers=workers
        ),
        timeout=180,
    )
    assert "responder: rules" in report
    assert re.search(r"throughput: \d+ messages/s", report)
    for line in ("at saturation", "at a steady"):
        found = re.search(line + r".*p50 [\d.]+  p95 [\d.]+  p99 [\d.]+.*n=(\d+)", report)
        assert found, report
    assert "n=40" in report  # every message of the saturation phase was answered
    assert re.search(r"insert rate \(autocommit\): \d+ rows/s", report)
