"""The timing helpers every benchmark script uses."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any


@dataclass
class Timed:
    """What a function returns to ``interleaved`` when it times itself (its work ran in other
    processes, and the time to hand it over is not the work's)."""

    seconds: float
    result: Any


def best_of(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """The fastest of ``runs`` calls of ``fn`` in seconds, and the last call's result (for checking)."""
    best, result = float("inf"), None
    for _ in range(runs):
        result = None  # the previous result is not kept alive while the next call runs
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def interleaved(
    fns: dict[str, Callable[[], Any]],
    rounds: int,
    once: Collection[str] = (),
    keep: Callable[[Any], Any] = lambda result: result,
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Times every function once per round, in turn, so that all of them meet the same machine:
    this VM's speed drifts by up to 2x within minutes, and timing one parser's runs after the
    other's turned that drift into their ratio. Each round starts one function further on, so no
    function always follows the same one (the first parse after seconds of a pure-Python peer
    meets cold caches and memory handed back to the system). A function that returns
    :class:`Timed` gives its own seconds. Returns each label's seconds, one per round it ran
    (labels in ``once`` run in the first round only), and ``keep`` of its first result (for
    checking; a large result is not held while the others run) or the exception it raised (a
    function that raises is not run again)."""
    times: dict[str, list[float]] = {label: [] for label in fns}
    results: dict[str, Any] = {}
    labels = list(fns)
    for r in range(rounds):
        for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
            fn = fns[label]
            if (r and label in once) or isinstance(results.get(label), Exception):
                continue
            start = time.perf_counter()
            try:
                result = fn()
            except Exception as e:  # a peer that crashes on real input is reported, not fatal
                results[label] = e
                continue
            seconds = time.perf_counter() - start
            if isinstance(result, Timed):
                seconds, result = result.seconds, result.result
            times[label].append(seconds)
            if label not in results:
                results[label] = keep(result)
            del result  # not kept alive while the next function runs
    return times, results
