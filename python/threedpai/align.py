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

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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


PARALLEL_ROWS = 1 << 20  # fewer left times than this are not worth a second thread


def asof(
    left: Any, right: Any, direction: Direction = "backward", tolerance: float = np.inf, *, threads: int | None = None
) -> IntArray:
    """For each time of ``left``, the index of its as-of match in ``right``, -1 for none within
    ``tolerance``: ``backward`` the last right <= left, ``forward`` the first right >= left,
    ``nearest`` the closer of the two (a tie goes backward). Among equal right times, backward and
    nearest take the last, forward the first, as pandas ``merge_asof`` does. Both sorted.
    ``threads`` (default: every core) share the left times; the kernel runs without the GIL."""
    lt, rt = _clocks(left, right)
    cuts = _slices(len(lt), threads, PARALLEL_ROWS)
    if len(cuts) <= 2:
        return _align.asof_indices(lt, rt, direction, tolerance)
    # Threads take slices of the left clock, each with the part of the right clock it can match.
    # The slices check their own order; the joints and the whole right clock are checked here.
    if np.any(lt[cuts[1:-1]] < lt[cuts[1:-1] - 1]) or not np.all(rt[1:] >= rt[:-1]) or np.isnan(rt[:1]).any():
        raise ValueError("as-of matching needs both clocks sorted ascending and free of NaN")
    out = np.empty(len(lt), dtype=np.int64)

    def part(a: int, b: int) -> None:
        r0 = max(int(np.searchsorted(rt, lt[a], "left")) - 1, 0)
        r1 = min(int(np.searchsorted(rt, lt[b - 1], "right")) + 1, len(rt))
        _align.asof_indices(lt[a:b], rt[r0:r1], direction, tolerance, out[a:b], r0)

    _in_threads(part, cuts)
    return out


def _slices(n: int, threads: int | None, per_thread: int) -> IntArray:
    """Cut points of ``n`` items for ``threads`` (default: every core), at least ``per_thread`` each."""
    k = min(threads or os.cpu_count() or 1, max(n // per_thread, 1))
    return np.linspace(0, n, k + 1).astype(np.int64)


def _in_threads(part: Callable[[int, int], None], cuts: IntArray) -> None:
    """``part(a, b)`` for each slice between the cuts, one thread each (the kernels drop the GIL)."""
    with ThreadPoolExecutor(len(cuts) - 1) as pool:
        for f in [pool.submit(part, int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]:
            f.result()


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


PARALLEL_INTERVALS = 1 << 16  # fewer intervals than this are not worth a second thread


def aggregate(
    t: Any,
    values: Any,
    starts: Any,
    ends: Any,
    stats: Sequence[str] = ("count", "mean", "min", "max", "std"),
    *,
    threads: int | None = None,
) -> dict[str, Any]:
    """Statistics of each channel over each interval ``[starts[k], ends[k])`` (see ``bounds``), in
    one pass: ``count`` (non-NaN samples), ``mean``, ``min``, ``max``, ``std`` (n - 1 in the
    denominator, as pandas, polars and DuckDB), ``first``, ``last``, ``rms``, ``slope`` (least
    squares, value per second). NaN samples are skipped; a statistic with too few samples is NaN.
    Results are keyed by statistic (``"mean"``) or, for named channels, ``"<name>_<stat>"``; each
    is a 1-D array per interval (2-D ``[n_intervals, n_channels]`` for unnamed channels).
    ``threads`` (default: every core) share the intervals; the kernel runs without the GIL."""
    unknown = [s for s in stats if s not in STATS]
    if unknown or len(set(stats)) != len(stats):
        raise ValueError(f"stats must be distinct names among {', '.join(STATS)}; got {list(stats)}")
    tc, s, e = _clocks(t, starts, ends)
    ch = _Channels.of(values)
    ch.check(tc)
    lo, hi = _align.interval_bounds(tc, s, e)
    planes, count = _range_stats(ch.columns, tc, lo, hi, tuple(stats), threads)
    by_stat = iter(planes)
    result = {name: count if name == "count" else next(by_stat) for name in stats}
    if ch.names is None:
        return {name: ch.give_back(rows) for name, rows in result.items()}
    return {f"{c}_{name}": rows[i] for name, rows in result.items() for i, c in enumerate(ch.names)}


def _range_stats(
    columns: list[Any], t: FloatArray, lo: IntArray, hi: IntArray, stats: tuple[str, ...], threads: int | None
) -> tuple[Any, Any]:
    """The kernel over slices of the intervals, one per thread, into one result."""
    n = len(lo)
    cuts = _slices(n, threads, PARALLEL_INTERVALS)
    if len(cuts) <= 2:
        return _align_channels.range_stats(columns, columns[0], t, lo, hi, stats)
    planes = sum(s != "count" for s in stats)
    out = np.empty((planes, len(columns), n))
    count = np.empty((len(columns), n) if "count" in stats else (0, 0), dtype=np.int64)

    def part(a: int, b: int) -> None:
        c = count[:, a:b] if "count" in stats else count
        _align_channels.range_stats(columns, columns[0], t, lo[a:b], hi[a:b], stats, out[:, :, a:b], c)

    _in_threads(part, cuts)
    return out, count


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


@dataclass(frozen=True)
class ClockFit:
    """The affine clock map ``t_timeline = offset + scale * t_sensor`` and how well it fits."""

    offset: float  # seconds, at t_sensor = 0
    scale: float
    residual_rms: float  # seconds: RMS of the window offsets about the fitted line
    n_windows: int  # windows that agreed and were fitted

    @property
    def drift_ppm(self) -> float:
        return (self.scale - 1.0) * 1e6

    def apply(self, t_sensor: Any) -> FloatArray:
        """Sensor times on the timeline clock."""
        return self.offset + self.scale * column(t_sensor).astype(np.float64)


def _grid_signal(t: FloatArray, x: FloatArray, rate_hz: float) -> tuple[float, FloatArray]:
    """``(t0, z)``: ``x`` resampled at ``rate_hz`` from ``t0``, standardised, gaps zero."""
    grid, z = resample(t, x.astype(np.float64), rate_hz)
    z = np.nan_to_num(z - np.nanmean(z))
    return float(grid[0]), z / (z.std() or 1.0)


def _xcorr_peak(ref: FloatArray, win: FloatArray) -> tuple[float, float]:
    """``(lag, r)``: the sub-sample lag of ``win`` inside ``ref`` where they correlate best (a
    parabola through the peak and its neighbours) and the correlation coefficient there."""
    n = len(ref) + len(win)
    size = 1 << (n - 1).bit_length()
    full = np.fft.irfft(np.fft.rfft(ref, size) * np.conj(np.fft.rfft(win, size)), size)
    valid = full[: len(ref) - len(win) + 1]  # lags where the window lies inside ref
    k = int(np.argmax(valid))
    frac = 0.0
    if 0 < k < len(valid) - 1:
        a, b, c = valid[k - 1], valid[k], valid[k + 1]
        den = a - 2 * b + c
        frac = 0.5 * (a - c) / den if den < 0 else 0.0
    seg = ref[k : k + len(win)]
    r = float(np.corrcoef(seg, win)[0, 1]) if seg.std() > 0 and win.std() > 0 else 0.0
    return k + frac, r


def estimate_clock(
    t_ref: Any,
    x_ref: Any,
    t_obs: Any,
    x_obs: Any,
    *,
    rate_hz: float = 100.0,
    n_windows: int = 32,
    max_drift_ppm: float = 1000.0,
    min_correlation: float = 0.5,
) -> ClockFit:
    """The map from the observed stream's clock to the reference (timeline) clock, found from one
    signal both streams carry: the commanded extrusion rate against a flow or pressure sensor, the
    planned position against a motion sensor. Both are resampled at ``rate_hz`` and standardised;
    a cross-correlation of the whole streams gives the coarse offset (anywhere within their spans);
    then each of ``n_windows`` windows of the observed stream is located in the reference within
    the drift ``max_drift_ppm`` allows, to a fraction of a sample, and a line through the window
    offsets (windows correlating below ``min_correlation`` or more than 3 robust deviations off it
    left out) gives offset and scale. Accuracy: docs/align.md."""
    tr, xr = _clocks(t_ref, x_ref)
    to, xo = _clocks(t_obs, x_obs)
    if min(len(tr), len(to)) < 2:
        raise ValueError("each stream needs at least two samples")
    r0, ref = _grid_signal(tr, xr, rate_hz)
    o0, obs = _grid_signal(to, xo, rate_hz)
    # coarse: obs sample i sits near ref sample i + lag; pad so every overlap is a valid lag
    pad = np.zeros(len(obs) - 1)
    lag, _ = _xcorr_peak(np.r_[pad, ref, pad], obs)
    coarse = r0 - o0 + (round(lag) - len(pad)) / rate_hz  # t_timeline - t_sensor
    width = len(obs) // n_windows
    if width < 4:
        raise ValueError("the observed stream is too short for the windows; lower n_windows or raise rate_hz")
    reach = int(np.ceil(max_drift_ppm * 1e-6 * len(obs) + 2))  # samples the drift can move a window
    centers, offsets = [], []
    for w in range(n_windows):
        a = w * width
        start = a + round((coarse - r0 + o0) * rate_hz) - reach
        lo, hi = max(start, 0), min(start + width + 2 * reach, len(ref))
        if hi - lo < width:
            continue
        lag, r = _xcorr_peak(ref[lo:hi], obs[a : a + width])
        if r >= min_correlation:
            centers.append(o0 + (a + (width - 1) / 2) / rate_hz)
            offsets.append(r0 - o0 + (lo + lag - a) / rate_hz)
    return _fit_line(np.array(centers), np.array(offsets))


def _fit_line(c: FloatArray, o: FloatArray) -> ClockFit:
    """Least squares ``o = a + s c`` with outliers (> 3 robust deviations) dropped, twice."""
    if len(c) < 2:
        raise ValueError("fewer than two windows correlate; check the signals, rate_hz and min_correlation")
    keep = np.ones(len(c), dtype=bool)
    for _ in range(2):
        mid = c[keep].mean()
        s, a = np.polyfit(c[keep] - mid, o[keep], 1)
        resid = o - (a + s * (c - mid))
        mad = 1.4826 * np.median(np.abs(resid[keep]))
        keep = np.abs(resid) <= max(3 * mad, 1e-9)
        if keep.sum() < 2:
            keep[:] = True
    mid = c[keep].mean()
    s, a = np.polyfit(c[keep] - mid, o[keep], 1)
    rms = float(np.sqrt(np.mean((o[keep] - (a + s * (c[keep] - mid))) ** 2)))
    return ClockFit(float(a - s * mid), float(1.0 + s), rms, int(keep.sum()))


AUDIO_MARGIN = 1 << 13  # samples each side of a chunk, discarded, so the chunk edges do not ring
AUDIO_CHUNK = (1 << 20) - 2 * AUDIO_MARGIN  # samples filtered per FFT: with its margins, a power of two


def audio_features(
    samples: Any,
    rate_hz: float,
    starts: Any,
    ends: Any,
    *,
    t0: float = 0.0,
    bands: Sequence[tuple[float, float]] = (),
) -> dict[str, Any]:
    """Per interval ``[starts[k], ends[k])`` of an audio stream whose sample i is at
    ``t0 + i / rate_hz`` on the timeline (map ``t0`` and the rate through a ``ClockFit`` first):
    ``count`` (samples), ``rms`` and, for each band ``(lo, hi)`` in Hz, ``energy_<lo>_<hi>``: the
    sum of squares of the band-passed signal over the interval divided by ``rate_hz`` (unit² · s;
    an FFT brick-wall filter over overlapping chunks). Intervals must be sorted as in ``bounds``."""
    x = column(samples, "samples")
    s, e = _clocks(starts, ends)
    if not rate_hz > 0:
        raise ValueError("rate_hz must be > 0")
    if np.isnan(x).any():
        raise ValueError("audio samples must not contain NaN")
    for lo_hz, hi_hz in bands:
        if not 0 <= lo_hz < hi_hz:
            raise ValueError(f"band ({lo_hz}, {hi_hz}) must have 0 <= lo < hi")
    # sample ranges of the intervals, as ``bounds`` would find them on the implicit clock
    lo = np.clip(np.ceil((s - t0) * rate_hz), 0, len(x)).astype(np.int64)
    hi = np.clip(np.ceil((e - t0) * rate_hz), 0, len(x)).astype(np.int64)
    if len(s) and not (np.all(np.diff(lo) >= 0) and np.all(np.diff(hi) >= 0) and np.all(hi >= lo)):
        raise ValueError("intervals need non-decreasing starts and ends, end >= start")
    sums = np.zeros((1 + len(bands), len(s)))
    for c0 in range(0, len(x), AUDIO_CHUNK):
        c1 = min(c0 + AUDIO_CHUNK, len(x))
        ks, ke = np.searchsorted(hi, c0, "right"), np.searchsorted(lo, c1, "left")  # intervals touching
        if ks >= ke:
            continue
        a, b = max(c0 - AUDIO_MARGIN, 0), min(c1 + AUDIO_MARGIN, len(x))
        seg = x[a:b].astype(np.float64)
        size = 1 << (len(seg) - 1).bit_length()  # zero-padded to a power of two: the fastest FFT
        spectrum = np.fft.rfft(seg, size)
        powers = [seg[c0 - a : c1 - a] ** 2]
        for lo_hz, hi_hz in bands:
            # bins of [lo_hz, hi_hz): frequency of bin i is i * rate / size
            i0 = min(int(np.ceil(lo_hz * size / rate_hz)), len(spectrum))
            i1 = min(int(np.ceil(hi_hz * size / rate_hz)), len(spectrum))
            masked = np.zeros_like(spectrum)
            masked[i0:i1] = spectrum[i0:i1]
            band = np.fft.irfft(masked, size)
            powers.append(band[c0 - a : c1 - a] ** 2)
        rl = np.clip(lo[ks:ke] - c0, 0, c1 - c0)
        rh = np.clip(hi[ks:ke] - c0, 0, c1 - c0)
        for i, p in enumerate(powers):
            cum = np.r_[0.0, np.cumsum(p)]  # within one chunk: no precision lost to long sums
            sums[i, ks:ke] += cum[rh] - cum[rl]
    count = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        out: dict[str, Any] = {"count": count, "rms": np.sqrt(sums[0] / count)}
    for (lo_hz, hi_hz), energy in zip(bands, sums[1:], strict=True):
        out[f"energy_{lo_hz:g}_{hi_hz:g}"] = energy / rate_hz
    return out
