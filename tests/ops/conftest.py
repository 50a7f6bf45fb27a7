"""Fixtures of the reliability proofs; figures are printed at the end of the run."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.infra.embedded import EmbeddedRedis

_FIGURES: list[str] = []


@pytest.fixture
def figures() -> list[str]:
    """Append ``"name: figure"`` lines; they are printed in the terminal summary."""
    return _FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("reliability figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A redis-server of this test alone, so the test may flush, stop and restart it."""
    redis = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="atiende-r-")), persistent=False)
    redis.start()
    yield redis
    redis.stop()
