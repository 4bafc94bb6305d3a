# cython: language_level=3
"""As-of matching of one sorted clock onto another (the seed of the alignment kernels).

Both inputs must be sorted ascending; one merge-like pass, no binary search, GIL released.
"""

import numpy as np

cimport cython

ctypedef fused real:
    float
    double


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _backward(const real[::1] left, const real[::1] right, double tol, long long[::1] out) noexcept nogil:
    cdef Py_ssize_t i, j = 0, n = left.shape[0], m = right.shape[0]
    for i in range(n):
        while j < m and right[j] <= left[i]:
            j += 1
        # right[j-1] is the last value <= left[i]
        if j > 0 and left[i] - right[j - 1] <= tol:
            out[i] = j - 1
        else:
            out[i] = -1


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _forward(const real[::1] left, const real[::1] right, double tol, long long[::1] out) noexcept nogil:
    cdef Py_ssize_t i, j = 0, n = left.shape[0], m = right.shape[0]
    for i in range(n):
        while j < m and right[j] < left[i]:
            j += 1
        # right[j] is the first value >= left[i]
        if j < m and right[j] - left[i] <= tol:
            out[i] = j
        else:
            out[i] = -1


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _nearest(const real[::1] left, const real[::1] right, double tol, long long[::1] out) noexcept nogil:
    cdef Py_ssize_t i, j = 0, n = left.shape[0], m = right.shape[0], best
    cdef double d_back, d_fwd
    for i in range(n):
        while j < m and right[j] < left[i]:
            j += 1
        # candidates: right[j-1] < left[i] <= right[j]; ties go backward, as pandas does
        best = -1
        if j > 0:
            best = j - 1
            d_back = left[i] - right[j - 1]
        if j < m:
            d_fwd = right[j] - left[i]
            if best < 0 or d_fwd < d_back:
                best = j
                d_back = d_fwd
        # an exact match among equal values takes the last equal value, as backward does
        if best == j and j < m and right[j] == left[i]:
            while best + 1 < m and right[best + 1] == left[i]:
                best += 1
        if best >= 0 and d_back <= tol:
            out[i] = best
        else:
            out[i] = -1


_DIRECTIONS = {"backward": 0, "forward": 1, "nearest": 2}


cdef void _match(const real[::1] l, const real[::1] r, int how, double tol, long long[::1] o) noexcept nogil:
    if how == 0:
        _backward(l, r, tol, o)
    elif how == 1:
        _forward(l, r, tol, o)
    else:
        _nearest(l, r, tol, o)


def asof_indices(left, right, str direction="backward", double tolerance=float("inf")):
    """For each value of sorted ``left``, the index into sorted ``right`` of its as-of match
    (``backward``: last right <= left; ``forward``: first right >= left; ``nearest``), or -1
    when there is none within ``tolerance``. Equal values in ``right`` resolve to the last one
    for backward and nearest, the first one for forward, matching pandas ``merge_asof``."""
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be backward, forward or nearest, not {direction!r}")
    if not tolerance >= 0:
        raise ValueError("tolerance must be >= 0")
    l = np.ascontiguousarray(left)
    r = np.ascontiguousarray(right)
    if not (l.dtype == r.dtype == np.float32):
        l = np.ascontiguousarray(l, dtype=np.float64)
        r = np.ascontiguousarray(r, dtype=np.float64)
    if l.ndim != 1 or r.ndim != 1:
        raise ValueError("asof_indices takes 1-D arrays")
    if (l.size > 1 and (l[1:] < l[:-1]).any()) or (r.size > 1 and (r[1:] < r[:-1]).any()):
        raise ValueError("asof_indices needs both inputs sorted ascending")
    if np.isnan(l).any() or np.isnan(r).any():
        raise ValueError("asof_indices inputs must not contain NaN")
    out = np.empty(l.shape[0], dtype=np.int64)
    cdef long long[::1] o = out
    cdef int how = _DIRECTIONS[direction]
    cdef const double[::1] ld, rd
    cdef const float[::1] lf, rf
    if l.dtype == np.float64:
        ld = l
        rd = r
        with nogil:
            _match(ld, rd, how, tolerance, o)
    else:
        lf = l
        rf = r
        with nogil:
            _match(lf, rf, how, tolerance, o)
    return out
