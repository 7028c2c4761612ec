"""The statistics pass streams its batches: read ahead in a thread, one compiled pass each.

A data source that fails mid-way fails the call with its own error, and no reading thread is
left behind; a caller that stops early stops the reader; the histogram range of the first
batch comes from the same pass as its statistics (no separate pass over it).
"""

from __future__ import annotations

import threading
import time

import keras
import numpy as np
import pytest

import insight
from insight.probe.stats import read_ahead


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "insight-stats-prefetch"]


def _wait_no_readers(seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while _readers() and time.monotonic() < deadline:
        time.sleep(0.01)
    return not _readers()


@pytest.fixture(scope="module")
def relu_model():
    keras.utils.set_random_seed(3)
    inp = keras.Input((5,), name="x")
    hidden = keras.layers.Dense(6, activation="relu", name="hidden")(inp)
    return keras.Model(inp, keras.layers.Dense(2, name="out")(hidden))


class _Failing:
    """A data source (anything with `batches`) whose third batch fails to load."""

    def __init__(self) -> None:
        self.read = 0

    def batches(self, batch_size: int):
        rng = np.random.default_rng(0)
        for _ in range(2):
            self.read += 1
            yield rng.normal(size=(batch_size, 5)).astype("float32"), None
        raise OSError("image 17 is unreadable")


def test_a_source_failing_mid_way_fails_the_call_with_its_error(relu_model):
    source = _Failing()
    with pytest.raises(OSError, match="image 17 is unreadable"):
        insight.activation_stats(relu_model, source, batch_size=4)
    assert source.read == 2
    assert _wait_no_readers()


def test_the_reader_reads_ahead_in_order_and_stops_with_its_caller():
    consumed = []

    def source():
        for i in range(100):
            consumed.append(i)
            yield i

    stream = read_ahead(source(), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    deadline = time.monotonic() + 2
    while len(consumed) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(consumed) == 5  # three taken, two waiting: read ahead, never further
    stream.close()
    assert _wait_no_readers()
    assert len(consumed) <= 6
    assert list(read_ahead(iter(range(7)))) == list(range(7))


def test_first_batch_histogram_range_is_that_batch_padded(relu_model):
    x = np.random.default_rng(1).normal(size=(12, 5)).astype("float32")
    stats = insight.activation_stats(relu_model, x, batch_size=12, bins=8)
    out = np.asarray(relu_model(x))
    counts, edges = stats.histograms["out"]
    pad = (out.max() - out.min()) * 0.1
    np.testing.assert_allclose([edges[0], edges[-1]], [out.min() - pad, out.max() + pad],
                               rtol=1e-5)
    assert int(counts.sum()) == out.size
    # A constant layer (a dead ReLU everywhere) is padded by 0.5 around its value.
    dead = keras.models.clone_model(relu_model)
    dead.set_weights([np.zeros_like(w) for w in relu_model.get_weights()])
    _, edges = insight.activation_stats(dead, x, batch_size=5, bins=8).histograms["hidden"]
    assert (edges[0], edges[-1]) == pytest.approx((-0.5, 0.5))
