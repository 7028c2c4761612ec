"""Smoothing against references written out here: the numbers on every Training chart.

Found by mutation testing (`mutmut run`, see README): the Gaussian's shape, the moving
average's window, `at=` and the chunked evaluation beyond 4,096 points were unchecked.
"""

from __future__ import annotations

import numpy as np
import pytest

from insight.curves.analysis import SMOOTHING, smooth
from insight.errors import UsageError

from ._errors import assert_error


def _reference(y: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Each point: the kernel-weighted mean of the points under the kernel (edges: the points
    that exist)."""
    half, out = len(kernel) // 2, np.empty(len(y))
    for i in range(len(y)):
        lo, hi = max(0, i - half), min(len(y), i + half + 1)
        k = kernel[half - (i - lo): half + (hi - i)]
        out[i] = (k * y[lo:hi]).sum() / k.sum()
    return out


def _gaussian(window: int) -> np.ndarray:
    sigma = window / 4.0  # a quarter of the window, as the page's help says
    half = int(np.ceil(3 * sigma))
    return np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)


@pytest.mark.parametrize("window", [3, 9, 21])
def test_gaussian_and_moving_average_match_the_reference(window):
    y = np.random.default_rng(window).normal(size=200).cumsum()
    assert np.allclose(smooth(y, "gaussian", window=window), _reference(y, _gaussian(window)))
    box = np.ones(2 * (window // 2) + 1)
    assert np.allclose(smooth(y, "moving_average", window=window), _reference(y, box))


def test_at_gives_the_same_values_as_everywhere_also_beyond_one_chunk():
    y = np.sin(np.arange(10_000) / 50.0) + np.random.default_rng(0).normal(0, 0.1, 10_000)
    at = np.arange(0, 10_000, 3)
    for method in SMOOTHING:
        full = smooth(y, method, window=9)
        assert np.allclose(smooth(y, method, window=9, at=at), full[at]), method
    assert np.allclose(smooth(y, "gaussian", window=9)[-5000:],
                       _reference(y[-5100:], _gaussian(9))[-5000:])


def test_short_series_and_none():
    assert np.allclose(smooth([0.0, 1.0], "ema", weight=0.5), [0.0, 2 / 3])  # debiased
    assert smooth([3.0], "ema").tolist() == [3.0]
    y = np.array([1.0, 5.0, 2.0])
    out = smooth(y, "none")
    assert out.tolist() == y.tolist() and out is not y
    assert smooth(y, "none", at=np.array([2])).tolist() == [2.0]


def test_bad_arguments_name_the_valid_values():
    with pytest.raises(UsageError) as excinfo:
        smooth([1.0, 2.0], "median")
    assert_error(excinfo, UsageError, "Unknown smoothing method", "ema, moving_average",
                 "method='median'")
    for weight in (1.5, -0.1):
        with pytest.raises(UsageError) as excinfo:
            smooth([1.0, 2.0], "ema", weight=weight)
        assert_error(excinfo, UsageError, "between 0 and 1", f"weight={weight!r}")
    assert len(smooth([1.0, 2.0], "ema", weight=1.0)) == 2  # the bound itself is allowed
