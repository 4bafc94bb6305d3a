"""The one timing helper every benchmark script uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """The fastest of ``runs`` calls of ``fn`` in seconds, and the last call's result (for checking)."""
    best, result = float("inf"), None
    for _ in range(runs):
        result = None  # the previous result is not kept alive while the next call runs
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result
