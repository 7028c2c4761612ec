"""Many sessions, one model: the app's panels computed from 8 threads at once equal serial ones.

Streamlit runs each session's script in its own thread and shares the model through the
resource cache. A Keras model is not safe for that: the probes patch every layer's `call`
while they trace their `tf.function`s, and a second thread running the same model meanwhile
(its own trace, `predict`, an eager call) records into the wrong trace, so activation
statistics and gradient norms come out wrong without any error (measured without the lock:
gradient norms of 0 and shifted activation histograms in 1 to 3 of 4 concurrent builds per
round, and this test red in 2 runs of 2). The app holds
`insight.ui.cache.model_lock` while a panel runs the model; these tests go through the same
cached `_panel` the pages call, on a freshly loaded model each round (nothing traced yet:
traces are where the race is).
"""

from __future__ import annotations

import gc
import json
import threading
import weakref

import numpy as np
import pandas as pd
import pytest

from insight.model.loading import load_model
from insight.panels import PanelContext, build_panel

# The panels whose first build traces a function over the whole model (a capture, a
# backward pass): the two a race corrupts.
JOBS = [("activation_table", {}), ("gradient_table", {})]
THREADS = 8
ROUNDS = 3  # without the lock every measured round had a wrong result; 3 make a miss unlikely


def _fingerprint(result) -> str:
    if isinstance(result, pd.DataFrame):
        return result.to_json(double_precision=10)
    return result.to_json() if hasattr(result, "to_json") else repr(result)


@pytest.fixture(scope="module")
def digits(sample_path, samples_dir):
    return sample_path("digits_cnn"), samples_dir / "digits_cnn" / "data.npz"


@pytest.fixture(scope="module")
def serial(digits):
    """Each job built alone, on a model of its own."""
    path, data = digits
    ctx = PanelContext(load_model(path), data)
    return {name: _fingerprint(build_panel(name, ctx, **params)) for name, params in JOBS}


def _hammer(path, data, threads: int, extra=None) -> tuple[list[tuple[str, str]], list[str]]:
    """`threads` threads, each building every job through the app's panel cache (a key of its
    own, so every thread computes) on one fresh model; `extra(model)` runs beside them."""
    from insight.ui import cache

    loaded = load_model(path)
    ctx = cache.with_memo(PanelContext(loaded, data))
    start = threading.Barrier(threads + (extra is not None))
    results, errors = [], []

    def build(i: int) -> None:
        try:
            start.wait()
            # half the threads in the other order: one session on the Activations page while
            # another is on Gradients (the same job in every thread would be computed once:
            # the memo's per-key lock serialises it)
            for name, params in JOBS if i % 2 else JOBS[::-1]:
                got = cache._panel(f"hammer{id(loaded)}|{i}", name,
                                   json.dumps(params, sort_keys=True), ctx)
                results.append((name, _fingerprint(got)))
        except Exception as exc:  # noqa: BLE001  reported by the test
            errors.append(f"{type(exc).__name__}: {exc}")

    def run_extra() -> None:
        start.wait()
        try:
            extra(loaded.model)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=build, args=(i,)) for i in range(threads)]
    if extra is not None:
        workers.append(threading.Thread(target=run_extra))
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "a panel build hung (a deadlock?)"
    return results, errors


@pytest.mark.slow
def test_panels_built_from_many_threads_equal_serial_builds(digits, serial):
    path, data = digits
    x = np.load(data)["x"][:64]
    predictions = []

    def predict(model) -> None:  # a model use outside the panels, as a page's could be
        for _ in range(4):
            predictions.append(model.predict(x, verbose=0))

    expected = load_model(path).model.predict(x, verbose=0)
    for _ in range(ROUNDS):
        results, errors = _hammer(path, data, THREADS, extra=predict)
        assert not errors, errors
        assert len(results) == THREADS * len(JOBS)
        wrong = sorted({name for name, got in results if got != serial[name]})
        assert not wrong, f"built concurrently, these panels differ from a serial build: {wrong}"
    for got in predictions:  # `predict` itself, from a thread beside the panels: the same
        np.testing.assert_array_equal(got, expected)


def test_one_reentrant_lock_per_model_released_with_it(load_sample):
    from insight.ui.cache import model_lock

    a, b = load_sample("digits_cnn"), load_sample("multi_io")
    lock = model_lock(a)
    assert model_lock(a) is lock and model_lock(b) is not lock
    with lock, lock:  # reentrant: a builder may ask for another panel of the same model
        other = threading.Thread(target=lambda: model_lock(b).acquire(timeout=5)
                                 and model_lock(b).release())
        other.start()  # another model is not held up meanwhile
        other.join(timeout=10)
        assert not other.is_alive()

    model = load_model(a.path)
    ref = weakref.ref(model.model)
    model_lock(model)
    del model
    gc.collect()
    assert ref() is None, "the lock table keeps an evicted model alive"
