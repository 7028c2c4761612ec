"""The one-read statistics kernels (`insight.probe.fused`) against numpy and TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from insight.probe.fused import SATURATION_MODES, moments, reduce_host_arrays, sampled_histogram
from insight.probe.reductions import HIST_SAMPLE


def test_moments_equal_numpy_across_block_boundaries():
    """Rows past the float32 blocks (256 rows each, and a last partial block) all count."""
    rng = np.random.default_rng(0)
    u = rng.normal(3.0, 2.0, size=(1_000, 7)).astype(np.float32)
    u[:, 2] = 0.0
    u[::3, 4] = 0.0
    s, q, nz, lo, hi, saturated = moments(u)
    np.testing.assert_allclose(s, u.astype(np.float64).sum(0), rtol=1e-6)
    np.testing.assert_allclose(q, (u.astype(np.float64) ** 2).sum(0), rtol=1e-6)
    np.testing.assert_array_equal(nz, (u != 0).sum(0))
    np.testing.assert_array_equal(lo, u.min(0))
    np.testing.assert_array_equal(hi, u.max(0))
    assert saturated == 0.0


@pytest.mark.parametrize("kind", ["sigmoid", "tanh", "softmax"])
def test_saturated_counts_as_numpy_counts_them(kind):
    rng = np.random.default_rng(1)
    u = rng.uniform(-1.0, 1.0, size=(300, 5)).astype(np.float32)
    if kind == "sigmoid":
        u = (u + 1) / 2
        expected = ((u < 0.01) | (u > 0.99)).sum()
    elif kind == "tanh":
        expected = (np.abs(u) > 0.99).sum()
    else:
        u = np.asarray(tf.nn.softmax(u * 20.0))
        expected = (u.max(1) > 0.99).sum()
    assert expected > 0
    assert moments(u, SATURATION_MODES[kind])[-1] == expected


def test_histogram_counts_as_tensorflow_counts():
    values = np.random.default_rng(2).normal(size=10_000).astype(np.float32)
    for step, (low, high) in [(1, (-1.0, 1.5)), (7, (-4.0, 4.0)), (1, (0.0, 0.25))]:
        got = sampled_histogram(values, step, low, high, 16)
        want = tf.histogram_fixed_width(values[::step], [low, high], nbins=16).numpy()
        np.testing.assert_array_equal(got, want)
        assert got.sum() == values[::step].size  # outside values fall into the edge bins


def test_nan_values_keep_the_sums_nan_and_the_rest_counted():
    u = np.array([[1.0, 0.0], [np.nan, 2.0], [3.0, -1.0]], np.float32)
    adds, lo, hi, used = reduce_host_arrays(u, np.full(2, np.nan, np.float32), 4, 0, HIST_SAMPLE)
    assert np.isnan(adds[1]) and adds[2] == 1.0  # unit 0's sum is NaN, unit 1's is 1
    assert hi.tolist() == [3.0, 2.0] and lo.tolist() == [1.0, -1.0]
    assert adds[-4:].sum() == 5  # the NaN is in no bin
    # a unit with no value but NaN has no extremes, and its batch no histogram range
    adds, lo, hi, used = reduce_host_arrays(np.full((3, 2), np.nan, np.float32),
                                            np.full(2, np.nan, np.float32), 4, 0, HIST_SAMPLE)
    assert np.isnan(lo).all() and np.isnan(hi).all() and np.isnan(used).all()
    assert adds[-4:].sum() == 0


def test_layout_matches_the_tensorflow_reduction():
    """`reduce_host_arrays` packs what `reduce_in_graph` packs, in the same order."""
    from insight.probe.reductions import reduce_in_graph

    rng = np.random.default_rng(3)
    a = rng.uniform(0.0, 1.0, size=(4, 6, 6, 3)).astype(np.float32)
    a[..., 1] = 0.0
    nan_range = np.full(2, np.nan, np.float32)
    host = reduce_host_arrays(a, nan_range, 8, SATURATION_MODES["sigmoid"], HIST_SAMPLE)
    graph = [t.numpy() for t in reduce_in_graph(tf.constant(a), tf.constant(nan_range), 8,
                                                "sigmoid")]
    for h, g in zip(host, graph, strict=True):
        np.testing.assert_allclose(h, g, rtol=1e-5)
    given = np.array([0.2, 0.7], np.float32)
    graph = reduce_in_graph(tf.constant(a), tf.constant(given), 8, None)[0]
    np.testing.assert_allclose(reduce_host_arrays(a, given, 8, 0, HIST_SAMPLE)[0], graph, rtol=1e-5)


def test_kernels_compile_where_no_cache_can_be_written():
    """A read-only install and home: numba refuses `cache=True` at import ("no locator
    available"); the kernels are compiled for the process instead. Root can write anywhere,
    so the refusal is numba's own error, raised by a stand-in for `njit`."""
    import subprocess
    import sys

    code = """
import numba, numpy as np
real = numba.njit
def refusing(*args, **kwargs):
    if kwargs.get("cache"):
        raise RuntimeError("cannot cache function '_moments': no locator available for file")
    return real(*args, **kwargs)
numba.njit = refusing
from insight.probe.fused import moments
print(moments(np.ones((3, 2), np.float32))[0].tolist())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[3.0, 3.0]"
