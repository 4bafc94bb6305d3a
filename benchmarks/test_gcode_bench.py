"""pytest-benchmark view of the G-code parsers (``pytest benchmarks --benchmark-only``).

One group per input; every parser's result is checked against threedpai's before timing.
The slow peers get a 2 MB prefix; MB/s is in each row's extra info. For one side-by-side table
with ratios, run ``python benchmarks/gcode_throughput.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gcode_throughput import g1_stats_threedpai, gcodeparser_parse, plain_split, prefix, pygcode_parse
from threedpai import gcode

PEER_BYTES = 2_000_000


@pytest.mark.parametrize("threads", [1, 2])
def test_threedpai_whole_file(benchmark, big_gcode: Path, threads: int) -> None:
    expected = g1_stats_threedpai(gcode.parse(big_gcode))
    table = benchmark(gcode.parse, big_gcode, threads=threads)
    assert g1_stats_threedpai(table) == expected
    _rate(benchmark, big_gcode.stat().st_size)


@pytest.mark.parametrize(
    "name,fn",
    [("threedpai", None), ("split loop", plain_split), ("gcodeparser", gcodeparser_parse), ("pygcode", pygcode_parse)],
)
def test_prefix(benchmark, big_gcode: Path, name: str, fn) -> None:
    benchmark.group = "2 MB prefix"
    head = prefix(big_gcode.read_bytes(), PEER_BYTES)
    expected = g1_stats_threedpai(gcode.parse(head))
    if fn is None:
        result = g1_stats_threedpai(benchmark(gcode.parse, head))
    else:
        text = head.decode()
        result = benchmark.pedantic(fn, args=(text,), rounds=1 if name == "pygcode" else 3)
    assert result[0] == expected[0] and result[1] == pytest.approx(expected[1])
    _rate(benchmark, len(head))


def _rate(benchmark, size: int) -> None:
    """MB/s in the row's extra info (no stats with ``--benchmark-disable``: the checks still run)."""
    if benchmark.stats is not None:
        benchmark.extra_info["MB/s"] = size / 1e6 / benchmark.stats.stats.min
