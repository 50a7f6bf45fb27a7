"""``atiende llm bench`` runs end to end (figures themselves are recorded in BENCHMARKS.md)."""

from __future__ import annotations

import re

from bot.bench.llm import run_llm_bench


async def test_bench_prints_the_figures_the_issue_names() -> None:
    report = await run_llm_bench(calls=5)
    assert re.search(r"chain overhead \(answer - bare HTTP\)\s+p50\s+-?[\d.]+ ms", report)
    assert "chain overhead in CPU time" in report
    assert re.search(r"added by the fallback .*\(p95 <= 150 ms\)", report)
