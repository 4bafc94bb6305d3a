"""Alignment of a run's streams: sensors, motion, frames and audio on one timeline.

>>> idx = asof(sensor_t, moves_t_start)                       # the move each sample falls after
>>> t, values, report = sort_dedup(sensor_t, {"temp": temp})  # clean a jittery stream
>>> grid, values = resample(t, values, rate_hz=100)           # channels onto a 100 Hz grid
>>> stats = aggregate(t, values, starts, ends)                # per-move count, mean, ..., slope
>>> fit = estimate_clock(t_ref, x_ref, t_obs, x_obs)          # sensor clock -> timeline clock

Clocks are 1-D float arrays in seconds, sorted ascending and free of NaN (``sort_dedup`` makes them
so). Channels are many value columns on one clock, given as a mapping (a dict or a
``pyarrow.Table``: results keyed by name), a 2-D array ``[n_samples, n_channels]``, a sequence of
1-D arrays, or one 1-D array. numpy arrays and Arrow columns without nulls go in without copies as
long as all are float32 or all float64. Assumptions and accuracy: docs/align.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from threedpai import _align, _align_channels

STATS = ("count", "mean", "min", "max", "std", "first", "last", "rms", "slope")
Direction = Literal["backward", "forward", "nearest"]
Method = Literal["linear", "previous"]
FloatArray = npt.NDArray[np.floating[Any]]
IntArray = npt.NDArray[np.int64]


def column(x: Any, name: str = "clock") -> FloatArray:
    """A 1-D float32/float64 numpy view of ``x`` (array-like or Arrow array): other numeric types
    are cast to float64 and Arrow chunks combined, which copy; nulls are rejected."""
    if isinstance(x, pa.ChunkedArray):
        x = x.chunk(0) if x.num_chunks == 1 else x.combine_chunks()
    if isinstance(x, pa.Array):
        if x.null_count:
            raise ValueError(f"{name} has nulls; fill them (e.g. with NaN) first")
        x = x.to_numpy(zero_copy_only=False)
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, not of shape {a.shape}")
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


def _common(*arrays: FloatArray) -> list[FloatArray]:
    """float32 only when all are; else float64 (a cast copies)."""
    if all(a.dtype == np.float32 for a in arrays):
        return list(arrays)
    return [np.ascontiguousarray(a, dtype=np.float64) for a in arrays]


def _clocks(*arrays: Any) -> list[FloatArray]:
    return [np.ascontiguousarray(a) for a in _common(*(column(a) for a in arrays))]


@dataclass(frozen=True)
class _Channels:
    """Channels as equal-length 1-D columns of one dtype, and how to give results back in the
    caller's shape."""

    columns: list[FloatArray]
    names: list[str] | None
    flat: bool  # one 1-D array given

    @classmethod
    def of(cls, values: Any) -> _Channels:
        names: list[str] | None = None
        flat = False
        if isinstance(values, pa.Table):
            names = values.column_names
            cols = [column(values.column(n), n) for n in names]
        elif isinstance(values, Mapping):
            names = [str(k) for k in values]
            cols = [column(v, str(k)) for k, v in values.items()]
        elif isinstance(values, np.ndarray) and values.ndim == 2:
            cols = [column(values[:, c]) for c in range(values.shape[1])]
        elif isinstance(values, Sequence) and len(values) and np.ndim(values[0]) == 1:
            cols = [column(v, f"channel {i}") for i, v in enumerate(values)]
        else:
            cols, flat = [column(values, "values")], True
        if not cols:
            raise ValueError("no channels given")
        if len({len(c) for c in cols}) > 1:
            raise ValueError("channels differ in length")
        return cls(_common(*cols), names, flat)

    def check(self, t: FloatArray) -> None:
        if len(self.columns[0]) != len(t):
            raise ValueError(f"channels have {len(self.columns[0])} samples, the clock {len(t)}")

    def give_back(self, rows: Sequence[np.ndarray] | np.ndarray) -> Any:
        """``rows[c]`` is channel c's result: a dict by name, one array, or a 2-D [n, c] array
        (a transposed view when ``rows`` is one 2-D array)."""
        if self.names is not None:
            return dict(zip(self.names, rows, strict=True))
        if self.flat:
            return rows[0]
        return rows.T if isinstance(rows, np.ndarray) else np.stack(rows, axis=1)


def asof(left: Any, right: Any, direction: Direction = "backward", tolerance: float = np.inf) -> IntArray:
    """For each time of ``left``, the index of its as-of match in ``right``, -1 for none within
    ``tolerance``: ``backward`` the last right <= left, ``forward`` the first right >= left,
    ``nearest`` the closer of the two (a tie goes backward). Among equal right times, backward and
    nearest take the last, forward the first, as pandas ``merge_asof`` does. Both sorted."""
    lt, rt = _clocks(left, right)
    return _align.asof_indices(lt, rt, direction, tolerance)


@dataclass(frozen=True)
class SortReport:
    """What ``sort_dedup`` found: samples in, samples out, and why they differ."""

    n_in: int
    n_out: int
    out_of_order: int  # samples moved back into order
    duplicates: int  # samples dropped for an equal time
    nan: int  # samples dropped for a NaN time

    @property
    def clean(self) -> bool:
        return self.n_in == self.n_out and not self.out_of_order


def sort_dedup(
    t: Any, values: Any = None, *, keep: Literal["last", "first"] = "last", max_unsorted: float = 0.25
) -> tuple[FloatArray, Any, SortReport]:
    """``(t, values, report)`` with ``t`` sorted, one sample per distinct time (the ``keep`` one of
    equal times, in input order) and NaN times dropped, channels gathered alike. A clean stream
    comes back as is, uncopied. Nearly sorted streams (late or early blocks, spikes) cost one
    pass plus a sort of the out-of-order samples; past ``max_unsorted`` of them, a stable argsort."""
    if keep not in ("last", "first"):
        raise ValueError(f"keep must be last or first, not {keep!r}")
    (tc,) = _clocks(t)
    ch = None if values is None else _Channels.of(values)
    if ch is not None:
        ch.check(tc)
    index, moved, dups, nan = _align.sort_dedup_index(tc, keep == "last", max_unsorted)
    report = SortReport(len(tc), len(tc) if index is None else len(index), moved, dups, nan)
    if ch is None:
        return (tc if index is None else tc[index]), None, report
    if index is None:
        # a clean 2-D array comes back itself rather than restacked
        return tc, values if isinstance(values, np.ndarray) else ch.give_back(ch.columns), report
    return tc[index], ch.give_back([c[index] for c in ch.columns]), report


def interpolate(t_src: Any, values: Any, t_dst: Any, method: Method = "linear") -> Any:
    """Channels on clock ``t_src`` at the times ``t_dst`` (both sorted): ``linear`` between the two
    neighbouring samples, or ``previous``, the last sample at or before (for states: modes, flags,
    counters). NaN before the first sample and, for linear, after the last; a NaN value spreads to
    the destination times next to it. The result keeps the channels' dtype and shape."""
    if method not in ("linear", "previous"):
        raise ValueError(f"method must be linear or previous, not {method!r}")
    src, dst = _clocks(t_src, t_dst)
    ch = _Channels.of(values)
    ch.check(src)
    rows = _align_channels.interpolate(ch.columns, ch.columns[0], src, dst, method == "linear")
    return ch.give_back(rows)


def resample(
    t: Any,
    values: Any,
    rate_hz: float,
    start: float | None = None,
    end: float | None = None,
    method: Method = "linear",
) -> tuple[FloatArray, Any]:
    """``(grid, values)``: channels interpolated onto the uniform grid ``start + k / rate_hz`` up
    to ``end`` inclusive. By default the grid starts at the first multiple of the period at or after
    the first sample, so streams resampled apart share grid times, and ends at the last sample.
    This is point sampling; for averages over each period, ``aggregate`` over ``windows``."""
    if not rate_hz > 0:
        raise ValueError("rate_hz must be > 0")
    (tc,) = _clocks(t)
    lo = float(tc[0]) if len(tc) else 0.0
    hi = float(tc[-1]) if len(tc) else -1.0
    end = hi if end is None else end
    if start is None:
        # grid times as k / rate: exact multiples of the period, within the samples
        k = np.arange(np.ceil(lo * rate_hz), np.floor(end * rate_hz) + 1)
        grid = k / rate_hz
        grid = grid[(grid >= lo) & (grid <= end)]
    else:
        grid = start + np.arange(max(int(np.floor((end - start) * rate_hz)) + 1, 0)) / rate_hz
        grid = grid[grid <= end]
    return grid, interpolate(tc, values, grid.astype(tc.dtype, copy=False), method)


def windows(start: float, end: float, width: float, step: float | None = None) -> tuple[FloatArray, FloatArray]:
    """``(starts, ends)`` of windows ``width`` long every ``step`` (default ``width``) from
    ``start`` while they begin before ``end``; the last one may reach past ``end``."""
    step = width if step is None else step
    if not (width > 0 and step > 0):
        raise ValueError("width and step must be > 0")
    starts = start + np.arange(max(int(np.ceil((end - start) / step)), 0)) * step
    return starts, starts + width


def bounds(t: Any, starts: Any, ends: Any) -> tuple[IntArray, IntArray]:
    """``(lo, hi)``: the samples of sorted ``t`` in ``[starts[k], ends[k])`` are ``lo[k]:hi[k]``.
    Starts and ends must each be non-decreasing, with ``ends >= starts``: touching intervals
    (moves, layers) and overlapping ones (sliding windows) alike."""
    tc, s, e = _clocks(t, starts, ends)
    return _align.interval_bounds(tc, s, e)


def aggregate(
    t: Any, values: Any, starts: Any, ends: Any, stats: Sequence[str] = ("count", "mean", "min", "max", "std")
) -> dict[str, Any]:
    """Statistics of each channel over each interval ``[starts[k], ends[k])`` (see ``bounds``), in
    one pass: ``count`` (non-NaN samples), ``mean``, ``min``, ``max``, ``std`` (n - 1 in the
    denominator, as pandas, polars and DuckDB), ``first``, ``last``, ``rms``, ``slope`` (least
    squares, value per second). NaN samples are skipped; a statistic with too few samples is NaN.
    Results are keyed by statistic (``"mean"``) or, for named channels, ``"<name>_<stat>"``; each
    is a 1-D array per interval (2-D ``[n_intervals, n_channels]`` for unnamed channels)."""
    unknown = [s for s in stats if s not in STATS]
    if unknown or len(set(stats)) != len(stats):
        raise ValueError(f"stats must be distinct names among {', '.join(STATS)}; got {list(stats)}")
    tc, s, e = _clocks(t, starts, ends)
    ch = _Channels.of(values)
    ch.check(tc)
    lo, hi = _align.interval_bounds(tc, s, e)
    planes, count = _align_channels.range_stats(ch.columns, ch.columns[0], tc, lo, hi, tuple(stats))
    by_stat = iter(planes)
    result = {name: count if name == "count" else next(by_stat) for name in stats}
    if ch.names is None:
        return {name: ch.give_back(rows) for name, rows in result.items()}
    return {f"{c}_{name}": rows[i] for name, rows in result.items() for i, c in enumerate(ch.names)}


def map_to_intervals(times: Any, starts: Any, ends: Any) -> IntArray:
    """For each sorted time (a camera frame, an event), the index of the interval
    ``[starts[k], ends[k])`` holding it, -1 for none. Intervals must be sorted and not overlap."""
    tc, s, e = _clocks(times, starts, ends)
    if len(s) != len(e):
        raise ValueError("starts and ends differ in length")
    if len(s) and not (np.all(e >= s) and np.all(s[1:] >= e[:-1])):
        raise ValueError("intervals must be sorted, with end >= start, and not overlap")
    k = _align.asof_indices(tc, s, "backward", np.inf)
    inside = k >= 0
    inside[inside] = tc[inside] < e[k[inside]]
    k[~inside] = -1
    return k
