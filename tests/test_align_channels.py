"""The channel kernels (interpolation, per-interval statistics) against numpy references."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from threedpai import align

times = st.floats(-100, 100, allow_nan=False).map(lambda x: round(x, 1))
sorted_floats = arrays(np.float64, st.integers(0, 40), elements=times).map(np.sort)
values = st.floats(-1e3, 1e3, allow_nan=False) | st.just(np.nan)


def reference_interp(src: np.ndarray, v: np.ndarray, dst: np.ndarray, linear: bool) -> np.ndarray:
    out = np.full(len(dst), np.nan)
    for k, x in enumerate(dst):
        j = np.searchsorted(src, x, side="right") - 1  # the last of equal times
        if j < 0:
            continue
        if not linear or src[j] == x:
            out[k] = v[j]
        elif j + 1 < len(src):
            w = (x - src[j]) / (src[j + 1] - src[j])
            out[k] = v[j] + w * (v[j + 1] - v[j])
    return out


@settings(max_examples=300, deadline=None)
@given(
    src=sorted_floats,
    dst=sorted_floats,
    data=st.data(),
    method=st.sampled_from(["linear", "previous"]),
    f32=st.booleans(),
)
def test_interpolate_matches_reference(src, dst, data, method, f32) -> None:
    v = data.draw(arrays(np.float64, (len(src), 2), elements=values))
    if f32:
        src, dst, v = src.astype(np.float32), dst.astype(np.float32), v.astype(np.float32)
    got = align.interpolate(src, v, dst, method)
    assert got.shape == (len(dst), 2) and got.dtype == v.dtype
    for c in range(2):
        want = reference_interp(src, v[:, c], dst, method == "linear")
        np.testing.assert_allclose(got[:, c], want, rtol=1e-6 if f32 else 1e-12, atol=1e-3 if f32 else 1e-9)


def test_interpolate_agrees_with_numpy_interp() -> None:
    rng = np.random.default_rng(2)
    src = np.cumsum(rng.uniform(0.1, 1.0, 1000))
    v = rng.normal(size=1000)
    dst = np.sort(rng.uniform(src[0], src[-1], 5000))
    np.testing.assert_allclose(align.interpolate(src, v, dst), np.interp(dst, src, v), rtol=1e-12, atol=1e-12)
    got = align.interpolate(src, {"a": v, "b": pa.array(2 * v)}, dst)
    np.testing.assert_allclose(got["b"], 2 * np.interp(dst, src, v), rtol=1e-12, atol=1e-12)


def test_resample_grid() -> None:
    t = np.array([0.013, 0.5, 1.0, 1.2])
    grid, v = align.resample(t, t * 2, rate_hz=10)
    assert np.allclose(grid, np.arange(1, 13) / 10)
    assert np.allclose(v, grid * 2)
    grid, v = align.resample(t, [t], rate_hz=4, start=0.0, end=2.0, method="previous")
    assert np.allclose(grid, np.arange(9) / 4) and v.shape == (9, 1)
    assert np.array_equal(v[:, 0], [np.nan, 0.013, 0.5, 0.5, 1.0, 1.2, 1.2, 1.2, 1.2], equal_nan=True)
    assert align.resample(np.empty(0), np.empty(0), 10)[0].size == 0
    with pytest.raises(ValueError, match="rate"):
        align.resample(t, t, 0)


def test_interpolate_rejects_bad_clocks_and_arguments() -> None:
    with pytest.raises(ValueError, match="source clock"):
        align.interpolate([0.0, 2.0, 1.0], [1.0, 2.0, 3.0], [0.5])
    with pytest.raises(ValueError, match="source clock"):
        align.interpolate([0.0, np.nan], [1.0, 2.0], [0.5])
    with pytest.raises(ValueError, match="destination clock"):
        align.interpolate([0.0, 1.0], [1.0, 2.0], [0.5, 0.2])
    with pytest.raises(ValueError, match="method"):
        align.interpolate([0.0], [1.0], [0.5], "cubic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="samples"):
        align.interpolate([0.0, 1.0], [1.0], [0.5])
    with pytest.raises(ValueError, match="no channels"):
        align.interpolate([0.0, 1.0], {}, [0.5])


def reference_stats(t: np.ndarray, v: np.ndarray, s: float, e: float) -> dict[str, float]:
    m = (t >= s) & (t < e) & ~np.isnan(v)
    x, u = v[m].astype(np.float64), t[m].astype(np.float64)
    n = len(x)
    out = {"count": n, "mean": np.nan, "min": np.nan, "max": np.nan, "std": np.nan}
    out |= {"first": np.nan, "last": np.nan, "rms": np.nan, "slope": np.nan}
    if n:
        out |= {"mean": x.mean(), "min": x.min(), "max": x.max(), "first": x[0], "last": x[-1]}
        out["rms"] = np.sqrt(np.mean(x * x))
    if n > 1:
        out["std"] = x.std(ddof=1)
        du = u - u.mean()
        # Undefined when every time is equal (judged on the times: their mean may round off them).
        if np.ptp(u) > 0:
            out["slope"] = np.sum(du * (x - x.mean())) / np.sum(du * du)
    return out


@st.composite
def intervals(draw) -> tuple[np.ndarray, np.ndarray]:
    """Sorted intervals: touching, with gaps, overlapping (starts and ends each non-decreasing)."""
    starts = np.sort(draw(arrays(np.float64, st.integers(0, 12), elements=times)))
    widths = draw(arrays(np.float64, len(starts), elements=st.sampled_from([0.0, 0.5, 3.0, 30.0])))
    return starts, np.maximum.accumulate(starts + widths) if len(starts) else starts


@settings(max_examples=300, deadline=None)
@given(t=sorted_floats, iv=intervals(), data=st.data(), f32=st.booleans())
def test_aggregate_matches_reference(t, iv, data, f32) -> None:
    starts, ends = iv
    v = data.draw(arrays(np.float64, (len(t), 2), elements=values))
    if f32:
        t, starts, ends, v = (a.astype(np.float32) for a in (t, starts, ends, v))
    got = align.aggregate(t, {"a": v[:, 0], "b": v[:, 1]}, starts, ends, stats=align.STATS)
    for k in range(len(starts)):
        for c, name in enumerate("ab"):
            want = reference_stats(t, v[:, c], starts[k], ends[k])
            for stat, w in want.items():
                g = got[f"{name}_{stat}"][k]
                scale = float(np.nanmax(np.abs(v[:, c]), initial=1.0))
                span = max(float(np.ptp(t)) if len(t) else 1.0, 0.1)
                tol = 1e-6 * scale / span if stat == "slope" else 1e-9 * scale
                assert g == pytest.approx(w, abs=tol, nan_ok=True), (stat, k, name)


def test_aggregate_shapes_and_layouts() -> None:
    t = np.arange(10.0)
    v = np.arange(20.0).reshape(10, 2)
    starts, ends = align.windows(0.0, 10.0, 4.0)
    assert starts.tolist() == [0, 4, 8] and ends.tolist() == [4, 8, 12]
    by_2d = align.aggregate(t, v, starts, ends, stats=("mean", "count"))
    assert by_2d["mean"].tolist() == [[3, 4], [11, 12], [17, 18]] and by_2d["count"].tolist() == [[4, 4]] * 2 + [[2, 2]]
    by_cols = align.aggregate(t, [v[:, 0], v[:, 1]], starts, ends, stats=("mean",))
    assert np.array_equal(by_cols["mean"], by_2d["mean"])
    by_fortran = align.aggregate(t, np.asfortranarray(v), starts, ends, stats=("mean",))
    assert np.array_equal(by_fortran["mean"], by_2d["mean"])
    table = pa.table({"x": v[:, 0], "y": v[:, 1]})
    named = align.aggregate(pa.array(t), table, starts, ends, stats=("max",))
    assert list(named) == ["x_max", "y_max"] and named["y_max"].tolist() == [7, 15, 19]
    assert align.aggregate(t, v[:, 0], [], [], stats=("mean",))["mean"].shape == (0,)
    empty = align.aggregate(np.empty(0), np.empty(0), [0.0], [1.0], stats=("count", "mean"))
    assert empty["count"].tolist() == [0] and np.isnan(empty["mean"][0])
    overlapping = align.aggregate(t, v[:, 0], *align.windows(0.0, 10.0, 4.0, step=2.0), stats=("count",))
    assert overlapping["count"].tolist() == [4, 4, 4, 4, 2]


def test_aggregate_keeps_precision_with_large_offsets() -> None:
    t = 1.7e9 + np.arange(1000) * 1e-3  # epoch seconds
    v = 1e6 + np.sin(np.arange(1000))
    got = align.aggregate(t, v, [t[0]], [t[-1] + 1], stats=("std", "slope"))
    assert got["std"][0] == pytest.approx(np.std(v, ddof=1), rel=1e-9)
    assert got["slope"][0] == pytest.approx(np.polyfit(t - t[0], v, 1)[0], rel=1e-6)


def test_aggregate_rejects_bad_input() -> None:
    t = np.arange(5.0)
    with pytest.raises(ValueError, match="stats"):
        align.aggregate(t, t, [0.0], [1.0], stats=("median",))
    with pytest.raises(ValueError, match="stats"):
        align.aggregate(t, t, [0.0], [1.0], stats=("mean", "mean"))
    with pytest.raises(ValueError, match="intervals"):
        align.aggregate(t, t, [1.0, 0.0], [2.0, 3.0])
    with pytest.raises(ValueError, match="intervals"):
        align.aggregate(t, t, [0.0], [-1.0])
    with pytest.raises(ValueError, match="intervals"):
        align.aggregate(t, t, [np.nan], [1.0])
    with pytest.raises(ValueError, match="sample clock"):
        align.aggregate(t[::-1], t, [0.0], [1.0])
    with pytest.raises(ValueError, match="sample clock"):
        align.aggregate(np.r_[t, np.nan], np.r_[t, 0.0], [0.0], [1.0])
    with pytest.raises(ValueError, match="length"):
        align.aggregate(t, t, [0.0, 1.0], [2.0])
    with pytest.raises(ValueError, match="differ in length"):
        align.aggregate(t, [t, t[:3]], [0.0], [1.0])


@pytest.mark.parametrize("stats", [("count", "mean", "std"), ("max", "slope")])
def test_threads_share_the_intervals_without_changing_the_result(monkeypatch: pytest.MonkeyPatch, stats) -> None:
    monkeypatch.setattr(align, "PARALLEL_INTERVALS", 8)  # so a small input is split
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 100, 5000))
    v = rng.normal(size=(5000, 3))
    v[rng.integers(0, 5000, 50), 1] = np.nan
    starts = np.sort(rng.uniform(0, 100, 997))
    ends = starts + 0.5
    one = align.aggregate(t, v, starts, ends, stats=stats, threads=1)
    three = align.aggregate(t, v, starts, ends, stats=stats, threads=3)
    for name in stats:
        np.testing.assert_array_equal(one[name], three[name])
