"""One read of a layer's output for every statistic: the CPU path of `insight.probe.stats`.

On CPU the statistics pass is bound by memory, not arithmetic: MobileNetV2-96 at batch 64
writes ~1 GB of activations per batch, and each TensorFlow reduction (`reduce_sum`,
`reduce_max`, a cast and a count) reads all of it again. `moments` reads each value once
and keeps every per-unit statistic (sum, sum of squares, nonzero count, min, max and the
saturation count) in registers, so the five reductions cost one read: measured 1.94x a
forward pass against 4.95x for TensorFlow's kernels in the same run (`bench_probe`).

The kernels are compiled by numba (already a dependency, through umap-learn), release the
GIL, and run inside the compiled pass through `tf.numpy_function`, so one layer is reduced
while TensorFlow computes the next and each output is freed as soon as it is read.

Example:

>>> import numpy as np
>>> adds, lo, hi, used = reduce_host_arrays(np.array([[0., 2.], [1., -2.]], np.float32),
...                                     np.array([np.nan, np.nan], np.float32), 4, 0, 64)
>>> adds[:7].tolist()  # count, sums, sums of squares, nonzero counts
[2.0, 1.0, 0.0, 1.0, 8.0, 1.0, 2.0]
>>> lo.tolist(), hi.tolist()
([0.0, -2.0], [1.0, 2.0])
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["SATURATION_MODES", "reduce_host_arrays", "moments", "sampled_histogram", "warm_up"]

# `moments`' `mode`: which values count as saturated (see `insight.probe.stats`).
SATURATION_MODES = {None: 0, "sigmoid": 1, "tanh": 2, "softmax": 3}

# Rows summed in float32 before they join the float64 totals: exact enough per block, and the
# inner loop stays in single precision (twice the SIMD width).
_BLOCK = 256


def _jit(fn):
    """`fn` compiled by numba, kept in its disk cache where one is writable (`NUMBA_CACHE_DIR`,
    beside the module, or the user's cache); compiled per process where none is."""
    try:
        return numba.njit(nogil=True, cache=True)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(fn)


@_jit
def _moments(u, mode):  # pragma: no cover - compiled
    n, c = u.shape
    s = np.zeros(c, np.float64)
    q = np.zeros(c, np.float64)
    nz = np.zeros(c, np.float64)
    lo = np.full(c, np.inf, np.float32)
    hi = np.full(c, -np.inf, np.float32)
    ps = np.zeros(c, np.float32)
    pq = np.zeros(c, np.float32)
    pn = np.zeros(c, np.float32)
    saturated = 0.0
    for i in range(n):
        for j in range(c):
            v = u[i, j]
            ps[j] += v
            pq[j] += v * v
            pn[j] += np.float32(v != 0)
            lo[j] = min(lo[j], v)
            hi[j] = max(hi[j], v)
        if mode == 1:
            for j in range(c):
                saturated += (u[i, j] < 0.01) | (u[i, j] > 0.99)
        elif mode == 2:
            for j in range(c):
                saturated += abs(u[i, j]) > 0.99
        elif mode == 3:
            row_max = -np.inf
            for j in range(c):
                row_max = max(row_max, u[i, j])
            saturated += row_max > 0.99
        if i % _BLOCK == _BLOCK - 1 or i == n - 1:
            for j in range(c):
                s[j] += ps[j]
                q[j] += pq[j]
                nz[j] += pn[j]
                ps[j] = 0.0
                pq[j] = 0.0
                pn[j] = 0.0
    return s, q, nz, lo, hi, saturated


@_jit
def _histogram(flat, step, low, high, bins):  # pragma: no cover - compiled
    counts = np.zeros(bins, np.float64)
    width = high - low
    for k in range(0, flat.size, step):
        v = flat[k]
        if v != v:  # NaN: in no bin
            continue
        b = int(np.floor(bins * (v - low) / width)) if width > 0 else 0
        counts[min(max(b, 0), bins - 1)] += 1.0
    return counts


def moments(u: np.ndarray, mode: int = 0) -> tuple:
    """`(sum, sumsq, nonzero, min, max, saturated)` per unit (column) of the 2-D float32 `u`,
    in one read; `mode` from `SATURATION_MODES`.

    Example:

    >>> moments(np.array([[0.995, 0.5]], np.float32), SATURATION_MODES["sigmoid"])[-1]
    1.0
    """
    return _moments(np.ascontiguousarray(u, np.float32), int(mode))


def sampled_histogram(flat: np.ndarray, step: int, low: float, high: float,
                      bins: int) -> np.ndarray:
    """Counts of every `step`-th value of `flat` in `bins` equal bins over `[low, high]`, as
    `tf.histogram_fixed_width` counts them (values outside fall into the edge bins).

    Example:

    >>> sampled_histogram(np.array([-5., 0.1, 0.6, 9.], np.float32), 1, 0., 1., 2).tolist()
    [2.0, 2.0]
    """
    return _histogram(flat, int(step), float(low), float(high), int(bins))


def reduce_host_arrays(a: np.ndarray, given_range: np.ndarray, bins: int, mode: int,
                       hist_sample: int) -> tuple[np.ndarray, ...]:
    """One layer's batch reduced to `(adds, mins, maxs, used_range)`, laid out as
    `insight.probe.reductions.reduce_in_graph` lays them out (`adds`: count, sums, sums of
    squares, nonzero counts, the saturated count when `mode`, the histogram), float64 sums.

    `given_range` of NaNs asks for this batch's extremes, padded by 10% (by 0.5 when
    constant), as the histogram range; the histogram reads every k-th value, at most
    `hist_sample` of them.
    """
    a = np.asarray(a, np.float32)
    u = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(-1, 1)
    s, q, nz, lo, hi, saturated = moments(u, mode)
    unseen = lo > hi  # a unit whose every value is NaN has no extremes: NaN, not +-inf
    if unseen.any():
        lo[unseen] = hi[unseen] = np.nan
    if np.isnan(given_range).any():
        low, high = ((float(np.nanmin(lo)), float(np.nanmax(hi))) if np.isfinite(lo).any()
                     else (np.nan, np.nan))
        pad = (high - low) * 0.1 if high > low else 0.5
        used = np.array([low - pad, high + pad], np.float32)
    else:
        used = np.asarray(given_range, np.float32)
    flat = u.reshape(-1)
    step = max(flat.size // hist_sample, 1)
    hist = (sampled_histogram(flat, step, used[0], used[1], bins)
            if np.isfinite(used).all() else np.zeros(bins))
    parts = [np.array([u.shape[0]], np.float64), s, q, nz]
    if mode:
        parts.append(np.array([saturated], np.float64))
    parts.append(hist)
    return np.concatenate(parts), lo, hi, used


def warm_up() -> None:
    """Compile (or load from numba's disk cache) both kernels for float32 outputs."""
    reduce_host_arrays(np.zeros((2, 2), np.float32), np.full(2, np.nan, np.float32), 2, 1, 4)
