"""Fixtures of the production-safety tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.prod.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()
