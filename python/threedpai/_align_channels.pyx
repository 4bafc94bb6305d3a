# cython: language_level=3
"""Channel kernels: many channels on one clock, interpolated onto another clock or reduced over
index ranges. The clock work (finding neighbours, interval bounds) is done once for all channels.

Channels arrive as a list of 1-D arrays of one dtype, each with its own stride, so columns of an
Arrow table, a list of arrays and the columns of a 2-D array of either order all go in uncopied.
"""

import numpy as np

cimport cython
from libc.math cimport INFINITY, NAN, sqrt
from libc.stdlib cimport free, malloc

from threedpai._align_types cimport clock, real

# The statistics in the order of the kernel's result slots; "count" is written as int64 apart.
STATS = ("count", "mean", "min", "max", "std", "first", "last", "rms", "slope")
cdef enum:
    N_STATS = 9
    BLOCK = 512


cdef int _pointers(list columns, Py_ssize_t itemsize, const char** ptr, Py_ssize_t* stride) except -1:
    cdef Py_ssize_t c
    for c in range(len(columns)):
        a = columns[c]
        ptr[c] = <const char*> <size_t> a.__array_interface__["data"][0]
        stride[c] = a.strides[0] // itemsize
    return 0


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.cdivision(True)
cdef inline void _reduce(
    const real* p, Py_ssize_t st, const clock[::1] t, Py_ssize_t a, Py_ssize_t b, const int* want, double* r
) noexcept nogil:
    """The statistics of p[a*st:b*st:st] that have a slot in ``want``, NaN skipped, into r (in the
    order of STATS; r[0], the count, always). Sums are taken
    relative to the first value and the first time, so large offsets do not cost precision."""
    cdef Py_ssize_t i
    cdef double x, x0, d, u, t0, n = 0, s = 0, ss = 0, su = 0, suu = 0, sud = 0
    cdef double lo = INFINITY, hi = -INFINITY, last = NAN, den
    cdef bint slope = want[8] >= 0
    while a < b and p[a * st] != p[a * st]:
        a += 1
    x0 = p[a * st] if a < b else NAN
    t0 = t[a] if slope and a < b else 0.0
    for i in range(a, b):
        x = p[i * st]
        if x == x:
            d = x - x0
            n += 1
            s += d
            ss += d * d
            lo = x if x < lo else lo
            hi = x if x > hi else hi
            last = x
            if slope:
                u = t[i] - t0
                su += u
                suu += u * u
                sud += u * d
    r[0] = n
    if n == 0:
        for i in range(1, N_STATS):
            r[i] = NAN
        return
    # only the asked statistics: the divisions and roots cost as much as the sums
    if want[1] >= 0:
        r[1] = x0 + s / n
    r[2] = lo
    r[3] = hi
    if want[4] >= 0:
        r[4] = sqrt(max(ss - s * s / n, 0.0) / (n - 1)) if n > 1 else NAN
    r[5] = x0
    r[6] = last
    if want[7] >= 0:
        r[7] = sqrt((ss + 2 * x0 * s + n * x0 * x0) / n)
    if slope:
        den = n * suu - su * su
        r[8] = (n * sud - su * s) / den if n > 1 and den > 0 else NAN


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _range_stats(
    const real[:] probe, const char** ptr, const Py_ssize_t* stride, Py_ssize_t nc, const clock[::1] t,
    const long long[::1] lo, const long long[::1] hi, const int* slot, double[:, :, :] out,
    long long[:, :] count
) noexcept nogil:
    cdef Py_ssize_t k, c, s
    cdef double r[N_STATS]
    for s in range(N_STATS):
        r[s] = NAN
    for k in range(lo.shape[0]):
        for c in range(nc):
            _reduce(<const real*> ptr[c], stride[c], t, lo[k], hi[k], slot, r)
            if slot[0] >= 0:
                count[c, k] = <long long> r[0]
            for s in range(1, N_STATS):
                if slot[s] >= 0:
                    out[slot[s], c, k] = r[s]


def range_stats(
    list columns, const real[:] probe, const clock[::1] t, const long long[::1] lo, const long long[::1] hi,
    tuple stats, out=None, count=None
):
    """``(values, count)``: ``values[i, c, k]`` is ``stats[i]`` (not "count") of channel ``c`` over
    samples ``lo[k]:hi[k]`` with NaN skipped; ``count[c, k]`` the non-NaN samples (shape (0, 0)
    when "count" is not asked). ``probe`` is ``columns[0]`` (it picks the dtype); ``t`` is the
    sample clock, read only for "slope". Ranges must lie within the columns. ``out`` and ``count``
    may be given (views of larger arrays, so threads can fill slices of one result)."""
    cdef Py_ssize_t nc = len(columns), n_int = lo.shape[0], c
    cdef int slot[N_STATS]
    planes = [s for s in stats if s != "count"]
    for c in range(N_STATS):
        slot[c] = planes.index(STATS[c]) if STATS[c] in planes else -1
    slot[0] = 0 if "count" in stats else -1
    want = slot[0] == 0
    if out is None:
        out = np.empty((len(planes), nc, n_int), dtype=np.float64)
    if count is None:
        count = np.empty((nc if want else 0, n_int if want else 0), dtype=np.int64)
    cdef double[:, :, :] out_v = out
    cdef long long[:, :] count_v = count
    if out_v.shape[0] != len(planes) or out_v.shape[1] != nc or out_v.shape[2] != n_int:
        raise ValueError("out has the wrong shape")
    if want and (count_v.shape[0] != nc or count_v.shape[1] != n_int):
        raise ValueError("count has the wrong shape")
    cdef const char** ptr = <const char**> malloc(max(nc, 1) * sizeof(char*))
    cdef Py_ssize_t* stride = <Py_ssize_t*> malloc(max(nc, 1) * sizeof(Py_ssize_t))
    try:
        _pointers(columns, sizeof(real), ptr, stride)
        with nogil:
            _range_stats(probe, ptr, stride, nc, t, lo, hi, slot, out_v, count_v)
    finally:
        free(ptr)
        free(stride)
    return out, count


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.cdivision(True)
cdef int _interpolate(
    const real[:] probe, const char** ptr, const Py_ssize_t* stride, Py_ssize_t nc, const clock[::1] src,
    const clock[::1] dst, bint linear, real[:, ::1] out
) noexcept nogil:
    """Block by block: neighbours and weights of BLOCK destination times once, then every channel.
    Returns 1 for a bad source clock, 2 for a bad destination clock, else 0."""
    cdef Py_ssize_t k, b, c, j = 0, m = src.shape[0], n = dst.shape[0], st, i
    cdef Py_ssize_t lo[BLOCK]
    cdef Py_ssize_t hi[BLOCK]
    cdef double w[BLOCK]
    cdef double x, prev = -INFINITY, v
    cdef const real* p
    cdef Py_ssize_t k0 = 0
    while k0 < n:
        b = min(<Py_ssize_t> BLOCK, n - k0)
        for k in range(b):
            x = dst[k0 + k]
            if not x >= prev:
                return 2
            prev = x
            # src[j-1] is the last source time <= x (the last of equal times)
            while j < m and src[j] <= x:
                if j > 0 and not src[j] >= src[j - 1]:
                    return 1
                j += 1
            if j == 0 or (linear and j == m and x > src[m - 1]):
                lo[k] = -1
            elif not linear or src[j - 1] == x:
                lo[k] = j - 1
                hi[k] = j - 1
                w[k] = 0.0
            else:
                lo[k] = j - 1
                hi[k] = j
                w[k] = (x - src[j - 1]) / (src[j] - src[j - 1])
        for c in range(nc):
            p = <const real*> ptr[c]
            st = stride[c]
            for k in range(b):
                if lo[k] < 0:
                    out[c, k0 + k] = NAN
                else:
                    v = p[lo[k] * st]
                    out[c, k0 + k] = <real> (v + w[k] * (p[hi[k] * st] - v)) if hi[k] != lo[k] else <real> v
        k0 += BLOCK
    for i in range(max(j, 1), m):
        if not src[i] >= src[i - 1]:
            return 1
    if m > 0 and src[0] != src[0]:
        return 1
    return 0


def interpolate(list columns, const real[:] probe, const clock[::1] src, const clock[::1] dst, bint linear):
    """``out[c, k]``: channel ``c`` (on sorted clock ``src``) at ``dst[k]`` (sorted), linear between
    the neighbouring samples or the previous sample's value; NaN before the first sample and, for
    linear, after the last. ``probe`` is ``columns[0]``; the result has the channels' dtype."""
    cdef Py_ssize_t nc = len(columns)
    out = np.empty((nc, dst.shape[0]), dtype=np.asarray(probe).dtype)
    cdef real[:, ::1] out_v = out
    cdef const char** ptr = <const char**> malloc(max(nc, 1) * sizeof(char*))
    cdef Py_ssize_t* stride = <Py_ssize_t*> malloc(max(nc, 1) * sizeof(Py_ssize_t))
    cdef int err
    try:
        _pointers(columns, sizeof(real), ptr, stride)
        with nogil:
            err = _interpolate(probe, ptr, stride, nc, src, dst, linear, out_v)
    finally:
        free(ptr)
        free(stride)
    if err == 1:
        raise ValueError("the source clock must be sorted ascending and free of NaN")
    if err == 2:
        raise ValueError("the destination clock must be sorted ascending and free of NaN")
    return out
