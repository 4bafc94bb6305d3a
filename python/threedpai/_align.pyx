# cython: language_level=3
"""Clock kernels: as-of matching, nearly-sorted ordering with de-duplication, interval bounds.

Every kernel is one merge-like pass over sorted inputs with the GIL released; the sortedness and
NaN checks ride along in the same pass instead of costing a pass of their own.
"""

import numpy as np

cimport cython
from libc.math cimport INFINITY, NAN

from threedpai._align_types cimport real

_DIRECTIONS = {"backward": 0, "forward": 1, "nearest": 2}


cdef enum:
    WINDOW = 8


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline long long _pick(double x, double r_prev, double r_next, Py_ssize_t j, int how, double tol) noexcept nogil:
    """The match of ``x`` in the run between right[j-1] and right[j]; a missing neighbour is NaN,
    so its distance compares false. Selects rather than branches: the choice is data dependent."""
    cdef double d_back = x - r_prev, d_fwd = r_next - x
    cdef long long back = j - 1 if d_back <= tol else -1
    cdef long long fwd = j if d_fwd <= tol else -1
    if how == 0:
        return back
    if how == 1:
        return fwd
    # a distance tie goes backward, as pandas does; an exact match has d_back == 0
    return fwd if d_fwd < d_back or back < 0 else back


@cython.boundscheck(False)
@cython.wraparound(False)
cdef bint _asof(
    const real[::1] left, const real[::1] right, int how, double tol, long long[::1] out, Py_ssize_t offset
) noexcept nogil:
    """Run by run over ``right``: the left values between right[j-1] and right[j] all take the same
    candidates. Each run is filled WINDOW values at a time without a data-dependent branch (values
    past the run are written too and overwritten by the next run), so the only mispredicted branch
    is the rare run longer than WINDOW. Forward runs end at the first right >= x, the others at the
    first right > x. Returns True for a bad clock (unsorted or NaN; left is checked pairwise in the
    windows, right run by run). ``offset`` is added to every match (``right`` a slice of a longer clock)."""
    cdef Py_ssize_t i = 0, j, q, L, n = left.shape[0], m = right.shape[0]
    cdef double x, r_prev = NAN, r_next, c_next
    cdef bint bad = n > 0 and left[0] != left[0], fwd = how == 1
    for j in range(m + 1):
        # the run bound is infinite past the end, the candidate there is missing (NaN)
        r_next = right[j] if j < m else INFINITY
        c_next = right[j] if j < m else NAN
        if j > 0 and j < m:
            bad |= not right[j] >= right[j - 1]
        while i + WINDOW < n:
            L = 0
            for q in range(WINDOW):
                x = left[i + q]
                L += (x <= r_next) if fwd else (x < r_next)
                bad |= not left[i + q + 1] >= x
                out[i + q] = _pick(x, r_prev, c_next, j + offset, how, tol)
            i += L
            if L < WINDOW:
                break
        if i + WINDOW >= n:
            # the tail, one value at a time
            while i < n and ((left[i] <= r_next) if fwd else (left[i] < r_next)):
                out[i] = _pick(left[i], r_prev, c_next, j + offset, how, tol)
                bad |= i + 1 < n and not left[i + 1] >= left[i]
                i += 1
        r_prev = r_next
    return bad or (m > 0 and right[0] != right[0])


def asof_indices(
    const real[::1] left, const real[::1] right, str direction="backward", double tolerance=np.inf, out=None,
    Py_ssize_t offset=0
):
    """For each value of sorted ``left``, the index into sorted ``right`` of its as-of match
    (``backward``: last right <= left; ``forward``: first right >= left; ``nearest``), or -1
    when there is none within ``tolerance``. Equal values in ``right`` resolve to the last one
    for backward and nearest, the first one for forward, matching pandas ``merge_asof``.
    ``out`` may be given (a slice of a larger result); ``offset`` is added to every match."""
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be backward, forward or nearest, not {direction!r}")
    if not tolerance >= 0:
        raise ValueError("tolerance must be >= 0")
    if out is None:
        out = np.empty(left.shape[0], dtype=np.int64)
    cdef long long[::1] o = out
    if o.shape[0] != left.shape[0]:
        raise ValueError("out must have one slot per left value")
    cdef int how = _DIRECTIONS[direction]
    cdef bint bad
    with nogil:
        bad = _asof(left, right, how, tolerance, o, offset)
    if bad:
        raise ValueError("as-of matching needs both clocks sorted ascending and free of NaN")
    return out


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _bounds(
    const real[::1] t, const real[::1] starts, const real[::1] ends, long long[::1] lo, long long[::1] hi
) noexcept nogil:
    """lo[k], hi[k]: the samples in [starts[k], ends[k]). Two monotone pointers, so overlapping
    windows cost no rescans. Returns 1 for a bad clock ``t``, 2 for bad intervals, else 0."""
    cdef Py_ssize_t k, i = 0, h = 0, n = t.shape[0]
    cdef real s, e, prev_s = -INFINITY, prev_e = -INFINITY
    for k in range(starts.shape[0]):
        s = starts[k]
        e = ends[k]
        if not (s >= prev_s and e >= prev_e and e >= s):
            return 2
        prev_s = s
        prev_e = e
        # the lo pointer visits each sample once: it checks the clock on the way
        while i < n and t[i] < s:
            if i > 0 and not t[i] >= t[i - 1]:
                return 1
            i += 1
        if h < i:
            h = i
        while h < n and t[h] < e:
            h += 1
        lo[k] = i
        hi[k] = h
    # the samples the lo pointer did not pass
    for i in range(max(i, 1), n):
        if not t[i] >= t[i - 1]:
            return 1
    if n > 0 and t[0] != t[0]:
        return 1
    return 0


def interval_bounds(const real[::1] t, const real[::1] starts, const real[::1] ends):
    """``(lo, hi)`` int64 arrays: samples ``lo[k]:hi[k]`` of sorted ``t`` lie in ``[starts[k], ends[k])``.
    Starts and ends must each be non-decreasing with ``ends >= starts`` (moves, layers, windows)."""
    if starts.shape[0] != ends.shape[0]:
        raise ValueError("starts and ends differ in length")
    lo = np.empty(starts.shape[0], dtype=np.int64)
    hi = np.empty(starts.shape[0], dtype=np.int64)
    cdef long long[::1] lo_v = lo, hi_v = hi
    cdef int err
    with nogil:
        err = _bounds(t, starts, ends, lo_v, hi_v)
    if err == 1:
        raise ValueError("the sample clock must be sorted ascending and free of NaN")
    if err == 2:
        raise ValueError("intervals need non-decreasing starts and ends, end >= start, no NaN")
    return lo, hi


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t _split(const real[::1] t, long long[::1] main, long long[::1] rest, Py_ssize_t* n_rest) noexcept nogil:
    """Splits the indices of non-NaN ``t`` into a sorted main sequence and the rest (the samples
    of out-of-order blocks). A sample that is above its successor is a block start or a spike: it
    goes to the rest too, so one glitch does not push the whole stream out. Returns len(main)."""
    cdef Py_ssize_t i, n = t.shape[0], nm = 0, nr = 0
    cdef real x, last = -INFINITY
    for i in range(n):
        x = t[i]
        if x != x:
            continue
        if x >= last and not (i + 1 < n and t[i + 1] < x):
            main[nm] = i
            nm += 1
            last = x
        else:
            rest[nr] = i
            nr += 1
    n_rest[0] = nr
    return nm


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _merge(const real[::1] t, const long long[::1] a, const long long[::1] b, long long[::1] out) noexcept nogil:
    """Merges two index sequences sorted by (t, index) into ``out``: the stable order."""
    cdef Py_ssize_t i = 0, j = 0, k = 0, na = a.shape[0], nb = b.shape[0]
    while i < na and j < nb:
        if t[b[j]] < t[a[i]] or (t[b[j]] == t[a[i]] and b[j] < a[i]):
            out[k] = b[j]
            j += 1
        else:
            out[k] = a[i]
            i += 1
        k += 1
    while i < na:
        out[k] = a[i]
        i += 1
        k += 1
    while j < nb:
        out[k] = b[j]
        j += 1
        k += 1


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t _dedup(const real[::1] t, long long[::1] order, bint keep_last) noexcept nogil:
    """Compacts ``order`` (stable sorted indices) to one index per distinct time; returns the count."""
    cdef Py_ssize_t i, k = 0, n = order.shape[0]
    for i in range(n):
        if keep_last:
            if i + 1 < n and t[order[i + 1]] == t[order[i]]:
                continue
        elif i > 0 and t[order[i - 1]] == t[order[i]]:
            continue
        order[k] = order[i]
        k += 1
    return k


@cython.boundscheck(False)
@cython.wraparound(False)
cdef Py_ssize_t _count_descents(const real[::1] t, Py_ssize_t* n_nan, Py_ssize_t* n_dup) noexcept nogil:
    # Compared with the last non-NaN time: a NaN between 1 and 0 must not hide the descent.
    cdef Py_ssize_t i, d = 0, nan = 0, dup = 0, n = t.shape[0]
    cdef bint seen = False
    cdef real last = 0
    for i in range(n):
        if t[i] != t[i]:
            nan += 1
            continue
        if seen:
            d += t[i] < last
            dup += t[i] == last
        last = t[i]
        seen = True
    n_nan[0] = nan
    n_dup[0] = dup
    return d


def sort_dedup_index(const real[::1] t, bint keep_last=True, double max_unsorted=0.25):
    """``(index, n_out_of_order, n_duplicates, n_nan)``: ``t[index]`` is sorted with one sample per
    distinct time (the last or first of equal times, in input order) and no NaN; ``index`` is None
    when ``t`` already is. Nearly sorted input is split into its sorted main sequence and the
    out-of-order samples, which alone are sorted and merged back; past ``max_unsorted`` of the
    samples out of order, a stable argsort is cheaper."""
    cdef Py_ssize_t n = t.shape[0], n_nan, n_dup, nm, nr, k
    with nogil:
        descents = _count_descents(t, &n_nan, &n_dup)
    if descents == 0 and n_nan == 0 and n_dup == 0:
        return None, 0, 0, 0
    main = np.empty(n, dtype=np.int64)
    rest = np.empty(n, dtype=np.int64)
    cdef long long[::1] main_v = main, rest_v = rest, order_v
    if descents == 0:
        order = np.flatnonzero(~np.isnan(np.asarray(t)))
        nr = 0
    else:
        with nogil:
            nm = _split(t, main_v, rest_v, &nr)
        if nr > max_unsorted * n:
            arr = np.asarray(t)
            order = np.argsort(arr, kind="stable")[: n - n_nan]  # NaN sorts last
        else:
            rest = rest[:nr]
            rest = rest[np.argsort(np.asarray(t)[rest], kind="stable")]
            order = np.empty(nm + nr, dtype=np.int64)
            order_v = order
            rest_v = rest
            main_v = main[:nm]
            with nogil:
                _merge(t, main_v, rest_v, order_v)
    order_v = order
    with nogil:
        k = _dedup(t, order_v, keep_last)
    return order[:k], int(nr), int(order.shape[0] - k), int(n_nan)
