"""The event loop: the only module that imports uvloop.

The API runs on uvloop (uvicorn picks it); the worker and the benchmarks run on it
too, so every process pays the same, lower, per-await cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh uvloop event loop."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
