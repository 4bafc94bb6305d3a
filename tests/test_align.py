"""The as-of matching kernel (Cython) against a simple numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from threedpai._align import asof_indices


def reference(left: np.ndarray, right: np.ndarray, direction: str, tol: float) -> np.ndarray:
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


sorted_floats = arrays(
    np.float64,
    st.integers(0, 40),
    elements=st.floats(-1e3, 1e3, allow_nan=False).map(lambda x: round(x, 1)),  # rounding makes ties
).map(np.sort)


@settings(max_examples=300, deadline=None)
@given(
    left=sorted_floats,
    right=sorted_floats,
    direction=st.sampled_from(["backward", "forward", "nearest"]),
    tol=st.sampled_from([0.0, 0.5, 10.0, float("inf")]),
    f32=st.booleans(),
)
def test_matches_reference(left, right, direction, tol, f32) -> None:
    if f32:
        left, right = left.astype(np.float32), right.astype(np.float32)
    got = asof_indices(left, right, direction, tol)
    assert np.array_equal(got, reference(left, right, direction, tol))


def test_rejects_unsorted_nan_and_bad_arguments() -> None:
    with pytest.raises(ValueError, match="sorted"):
        asof_indices(np.array([2.0, 1.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="NaN"):
        asof_indices(np.array([np.nan]), np.array([1.0]))
    with pytest.raises(ValueError, match="direction"):
        asof_indices(np.array([1.0]), np.array([1.0]), "sideways")
    with pytest.raises(ValueError, match="tolerance"):
        asof_indices(np.array([1.0]), np.array([1.0]), tolerance=-1)
