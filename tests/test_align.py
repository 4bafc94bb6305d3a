"""The clock kernels (as-of matching, ordering, interval mapping) against simple numpy references."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from threedpai import align


def reference_asof(left: np.ndarray, right: np.ndarray, direction: str, tol: float) -> np.ndarray:
    out = np.full(len(left), -1, dtype=np.int64)
    for i, x in enumerate(left):
        back = np.nonzero(right <= x)[0]
        fwd = np.nonzero(right >= x)[0]
        b = back[-1] if len(back) else -1
        f = fwd[0] if len(fwd) else -1
        if direction == "backward":
            best = b
        elif direction == "forward":
            best = f
        elif b < 0:
            best = f
        elif f < 0:
            best = b
        else:
            best = f if right[f] - x < x - right[b] else b  # ties go backward, as pandas does
        if best >= 0 and abs(right[best] - x) <= tol:
            out[i] = best
    return out


# rounding makes ties; sizes cross the kernel's 8-value windows
times = st.floats(-1e3, 1e3, allow_nan=False).map(lambda x: round(x, 1))
sorted_floats = arrays(np.float64, st.integers(0, 40), elements=times).map(np.sort)
dense_sorted = arrays(np.float64, st.integers(0, 80), elements=st.integers(0, 30).map(float)).map(np.sort)


@settings(max_examples=300, deadline=None)
@given(
    clocks=st.one_of(st.tuples(sorted_floats, sorted_floats), st.tuples(dense_sorted, dense_sorted)),
    direction=st.sampled_from(["backward", "forward", "nearest"]),
    tol=st.sampled_from([0.0, 0.5, 1.0, 10.0, float("inf")]),
    f32=st.booleans(),
)
def test_asof_matches_reference(clocks, direction, tol, f32) -> None:
    left, right = clocks
    if f32:
        left, right = left.astype(np.float32), right.astype(np.float32)
    got = align.asof(left, right, direction, tol)
    assert np.array_equal(got, reference_asof(left, right, direction, tol))


def test_asof_tolerance_edge_is_inclusive() -> None:
    left, right = np.array([1.0, 2.0, 3.0]), np.array([0.5, 2.0])
    assert align.asof(left, right, "backward", 1.0).tolist() == [0, 1, 1]
    assert align.asof(left, right, "backward", 0.5).tolist() == [0, 1, -1]
    assert align.asof(left, right, "backward", 0.49).tolist() == [-1, 1, -1]
    assert align.asof(left, right, "forward", 1.0).tolist() == [1, 1, -1]


def test_asof_agrees_with_pandas() -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    left = np.sort(rng.integers(0, 500, 3000).astype(float))
    right = np.sort(rng.integers(0, 500, 700).astype(float))
    for direction in ("backward", "forward", "nearest"):
        merged = pd.merge_asof(
            pd.DataFrame({"t": left}),
            pd.DataFrame({"t": right, "i": np.arange(len(right))}),
            on="t",
            direction=direction,
            tolerance=3.0,
        )
        assert np.array_equal(align.asof(left, right, direction, 3.0), merged["i"].fillna(-1).to_numpy(np.int64))


def test_asof_rejects_unsorted_nan_and_bad_arguments() -> None:
    for left, right in [([2.0, 1.0], [1.0]), ([1.0], [3.0, 1.0]), ([np.nan], [1.0]), ([1.0], [1.0, np.nan])]:
        with pytest.raises(ValueError, match="sorted"):
            align.asof(np.array(left), np.array(right))
    unsorted_late = np.arange(100.0)
    unsorted_late[57] = 3.0
    with pytest.raises(ValueError, match="sorted"):
        align.asof(unsorted_late, np.array([10.0, 20.0]))
    with pytest.raises(ValueError, match="direction"):
        align.asof([1.0], [1.0], "sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tolerance"):
        align.asof([1.0], [1.0], tolerance=-1)
    with pytest.raises(ValueError, match="1-D"):
        align.asof(np.zeros((2, 2)), [1.0])


def test_arrow_columns_go_in_without_copies() -> None:
    data = np.arange(10.0)
    arr = pa.array(data)
    view = align.column(arr)
    assert view.ctypes.data == arr.buffers()[1].address
    assert align.column(pa.chunked_array([arr])).ctypes.data == arr.buffers()[1].address
    assert align.column(data) is data
    assert align.column(pa.chunked_array([arr, arr])).tolist() == data.tolist() * 2
    assert align.column(np.arange(3)).dtype == np.float64
    with pytest.raises(ValueError, match="nulls"):
        align.column(pa.array([1.0, None]))


def reference_sort_dedup(t: np.ndarray, v: np.ndarray, keep: str) -> tuple[np.ndarray, np.ndarray]:
    ok = ~np.isnan(t)
    t, v = t[ok], v[ok]
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    if keep == "last":
        mask = np.r_[t[1:] != t[:-1], True] if len(t) else np.ones(0, bool)
    else:
        mask = np.r_[True, t[1:] != t[:-1]] if len(t) else np.ones(0, bool)
    return t[mask], v[mask]


@st.composite
def nearly_sorted(draw) -> np.ndarray:
    """A sorted stream with some blocks moved, spikes, duplicates and NaN."""
    t = np.sort(draw(arrays(np.float64, st.integers(0, 60), elements=times)))
    for _ in range(draw(st.integers(0, 3))):
        if len(t) > 2:
            a = draw(st.integers(0, len(t) - 1))
            b = draw(st.integers(a, min(len(t), a + 8)))
            dest = draw(st.integers(0, len(t) - (b - a)))
            block, rest = t[a:b], np.r_[t[:a], t[b:]]
            t = np.r_[rest[:dest], block, rest[dest:]]
    if len(t) and draw(st.booleans()):
        t[draw(st.integers(0, len(t) - 1))] = draw(st.sampled_from([np.nan, 1e6, -1e6]))
    return t


@settings(max_examples=300, deadline=None)
@given(
    t=st.one_of(nearly_sorted(), arrays(np.float64, st.integers(0, 30), elements=times)),
    keep=st.sampled_from(["last", "first"]),
    max_unsorted=st.sampled_from([0.0, 0.25, 1.0]),
    f32=st.booleans(),
)
def test_sort_dedup_matches_stable_sort(t, keep, max_unsorted, f32) -> None:
    if f32:
        t = t.astype(np.float32)
    values = np.arange(len(t), dtype=np.float64)
    got_t, got_v, report = align.sort_dedup(t, {"v": values}, keep=keep, max_unsorted=max_unsorted)
    want_t, want_v = reference_sort_dedup(t, values, keep)
    assert np.array_equal(got_t, want_t) and got_t.dtype == t.dtype
    assert np.array_equal(got_v["v"], want_v)
    assert report.n_in == len(t) and report.n_out == len(want_t)
    assert report.nan == np.isnan(t).sum()
    assert report.duplicates == len(t) - report.nan - len(want_t)
    assert report.clean == (report.n_out == len(t) and not np.any(t[1:] < t[:-1]))


def test_sort_dedup_clean_stream_is_not_copied() -> None:
    t = np.arange(5.0)
    values = np.ones((5, 2))
    got_t, got_v, report = align.sort_dedup(t, values)
    assert got_t is t and got_v is values and report.clean
    got_t, got_v, report = align.sort_dedup(np.array([0.0, 2.0, 1.0]), np.array([[0, 1], [2, 3], [4, 5.0]]))
    assert got_v.tolist() == [[0, 1], [4, 5], [2, 3]] and report.out_of_order == 1
    with pytest.raises(ValueError, match="keep"):
        align.sort_dedup(t, keep="middle")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(times=sorted_floats, starts=sorted_floats, f32=st.booleans())
def test_map_to_intervals(times, starts, f32) -> None:
    starts = np.unique(starts)
    ends = np.r_[starts[1:], starts[-1] + 1.0] if len(starts) else starts
    ends = np.where(np.arange(len(ends)) % 3 == 1, (starts + ends) / 2, ends)  # some gaps
    if f32:
        times, starts, ends = times.astype(np.float32), starts.astype(np.float32), ends.astype(np.float32)
    got = align.map_to_intervals(times, starts, ends)
    want = [next((k for k in range(len(starts)) if starts[k] <= x < ends[k]), -1) for x in times]
    assert got.tolist() == want


def test_map_to_intervals_rejects_overlaps() -> None:
    with pytest.raises(ValueError, match="overlap"):
        align.map_to_intervals([1.0], [0.0, 1.0], [2.0, 3.0])
    with pytest.raises(ValueError, match="length"):
        align.map_to_intervals([1.0], [0.0, 1.0], [2.0])


@settings(max_examples=150, deadline=None)
@given(
    left=arrays(np.float64, st.integers(0, 60), elements=st.integers(0, 20).map(float)),
    right=arrays(np.float64, st.integers(0, 30), elements=st.integers(-2, 22).map(float)),
    direction=st.sampled_from(["backward", "forward", "nearest"]),
    tolerance=st.sampled_from([np.inf, 0.0, 1.0, 2.5]),
    threads=st.integers(2, 5),
)
def test_threads_share_the_left_clock_without_changing_the_matches(left, right, direction, tolerance, threads) -> None:
    left, right = np.sort(left), np.sort(right)
    with mock.patch.object(align, "PARALLEL_ROWS", 4):  # so small inputs are split
        got = align.asof(left, right, direction, tolerance, threads=threads)
    np.testing.assert_array_equal(got, align.asof(left, right, direction, tolerance, threads=1))


def test_threaded_asof_still_rejects_unsorted_clocks() -> None:
    with mock.patch.object(align, "PARALLEL_ROWS", 4):
        left = np.arange(40.0)
        for bad_left, bad_right in [(np.r_[left[:20], left[:20]], left), (left, np.r_[left[:20], left[:20]])]:
            with pytest.raises(ValueError, match="sorted"):
                align.asof(bad_left, bad_right, threads=3)
        with pytest.raises(ValueError, match="sorted"):
            align.asof(left, np.r_[np.nan, left], threads=3)
