"""The results cache (`insight.results`) and the app's disk layer over it (`insight.ui.cache`):
plain values round-trip, a second process on the same folder reads what the first computed
(and waits for it when both ask at once),
a folder someone else wrote cannot run code here (pickled entries, files outside the folder),
and the app's activation statistics and projections of the real digits_cnn sample are read
back by a fresh app (Streamlit's caches cleared) without computing."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import time
import types

import diskcache
import numpy as np
import pandas as pd
import pytest

from insight import results


class _Evil:
    """Unpickling this writes a file: what a hostile cache folder would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_plain_values_round_trip(tmp_path):
    frame = pd.DataFrame({"x": np.arange(4, dtype=np.float32), "layer": list("abcd"),
                          "dead": [True, False, True, False], "n": np.arange(4)})
    frame.attrs.update(method="pca", explained_variance=np.array([0.6, 0.3]))
    value = {"table": frame, "hist": {"conv1": (np.ones(3, np.int64), np.linspace(0, 1, 4))},
             "n": 7, "raw": b"\x00\x01", "names": ["a", None, 1.5]}
    out = results.decode(results.encode(value))
    pd.testing.assert_frame_equal(out["table"], frame)
    assert out["table"].attrs["method"] == "pca"
    np.testing.assert_array_equal(out["table"].attrs["explained_variance"], [0.6, 0.3])
    assert isinstance(out["hist"]["conv1"], tuple) and out["hist"]["conv1"][0].dtype == np.int64
    assert out["raw"] == b"\x00\x01" and out["names"] == ["a", None, 1.5] and out["n"] == 7
    with pytest.raises(TypeError, match="not objects"):
        results.encode(np.array([object()]))
    with pytest.raises(TypeError, match="plain values"):
        results.encode({"model": object()})
    with pytest.raises(TypeError):
        results.cached("k", {"model": object()}, lambda: 1, cache=results.results_cache(tmp_path))


def test_a_second_process_reads_what_the_first_computed(tmp_path):
    store = results.results_cache(tmp_path)
    calls = []
    first = results.cached("demo", {"h": "ab" * 32, "p": 3},
                           lambda: calls.append(1) or np.arange(5.0), cache=store)
    again = results.cached("demo", {"p": 3, "h": "ab" * 32}, lambda: 1 / 0, cache=store)
    np.testing.assert_array_equal(first, again)
    assert calls == [1] and results.counters(store, shared=True) == {"demo/misses": 1,
                                                                     "demo/hits": 1}
    code = ("import numpy as np\nfrom insight import results\n"
            f"store = results.results_cache({str(tmp_path)!r})\n"
            "v = results.cached('demo', {'h': 'ab' * 32, 'p': 3}, lambda: 1 / 0, cache=store)\n"
            "print(v.tolist(), results.counters())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0.0, 1.0, 2.0, 3.0, 4.0] {'demo/hits': 1}"
    assert results.counters(store, shared=True)["demo/hits"] == 2


def _slow_compute(folder: str, log: str) -> None:
    def compute():
        with open(log, "a") as f:
            f.write("computed\n")
        time.sleep(1.0)
        return np.arange(3)

    value = results.cached("slow", [1], compute, cache=results.results_cache(folder))
    assert value.tolist() == [0, 1, 2]


def test_two_processes_asking_at_once_compute_once(tmp_path, monkeypatch):
    """Two replicas opening the same page together: the second waits for the first's
    result (the lock per key) instead of computing it too."""
    # A page test's AppTest may leave its script as __main__, which spawn would re-run.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    ctx = multiprocessing.get_context("spawn")
    log = tmp_path / "log"
    procs = [ctx.Process(target=_slow_compute, args=(str(tmp_path / "c"), str(log)))
             for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert log.read_text() == "computed\n"
    assert results.counters(results.results_cache(tmp_path / "c"), shared=True) == {
        "slow/misses": 1, "slow/hits": 1}


def _key_of(store, kind: str) -> str:
    (key,) = [k for k in store.iterkeys() if k.startswith(f"{kind}/")]
    return key


def test_a_hostile_cache_folder_runs_no_code_and_reads_no_other_file(tmp_path):
    """Entries another writer pickled (diskcache's default) read as missing and are replaced;
    an entry naming a file outside the folder is neither read nor deleted."""
    store = results.results_cache(tmp_path / "c")
    results.cached("demo", [1], lambda: b"good", cache=store)
    results.cached("other", [1], lambda: b"fine", cache=store)
    key, other = _key_of(store, "demo"), _key_of(store, "other")
    marker = tmp_path / "pwned"
    hostile = diskcache.Cache(str(tmp_path / "c"))  # diskcache's own Disk: pickles objects
    hostile.set(key, _Evil(str(marker)))
    hostile.set(other, [_Evil(str(marker))] * 10_000)  # big: pickled to a file
    hostile.close()
    assert results.cached("demo", [1], lambda: b"recomputed", cache=store) == b"recomputed"
    assert results.cached("other", [1], lambda: b"again", cache=store) == b"again"
    assert not marker.exists()
    assert results.cached("demo", [1], lambda: 1 / 0, cache=store) == b"recomputed"

    secret = tmp_path / "secret.txt"
    secret.write_bytes(results.encode(b"outside"))
    with sqlite3.connect(tmp_path / "c" / "cache.db") as db:
        db.execute("UPDATE Cache SET filename = ? WHERE key = ?", (str(secret), key))
    assert results.cached("demo", [1], lambda: b"mine", cache=store) == b"mine"
    assert secret.exists()  # replacing the entry did not delete the file it named
    with pytest.raises(OSError):
        store._disk.fetch(diskcache.core.MODE_BINARY, "../secret.txt", None, False)


def test_a_corrupt_blob_is_computed_again(tmp_path):
    store = results.results_cache(tmp_path)
    results.cached("demo", [2], lambda: np.ones(3), cache=store)
    key = _key_of(store, "demo")
    blob = bytearray(store.get(key))
    store.set(key, bytes(blob[: len(blob) // 2]))
    np.testing.assert_array_equal(results.cached("demo", [2], lambda: np.zeros(3),
                                                 cache=store), np.zeros(3))


def test_an_unusable_cache_folder_still_computes(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("INSIGHT_CACHE_DIR", str(blocked))
    assert results.cache_dir() == blocked / "results"
    assert results.cached("demo", [3], lambda: 42) == 42


def test_a_damaged_database_still_computes(tmp_path, monkeypatch):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "cache.db").write_bytes(b"not a database" * 100)
    monkeypatch.setenv("INSIGHT_CACHE_DIR", str(tmp_path))
    with pytest.raises(results.UNAVAILABLE):
        results.results_cache()
    assert results.cached("demo", [4], lambda: 7) == 7


@pytest.fixture
def app_cache(tmp_path, monkeypatch):
    """An empty results cache for this test and Streamlit's in-process caches cleared (a new
    replica) before and after."""
    import streamlit as st

    monkeypatch.setenv("INSIGHT_CACHE_DIR", str(tmp_path))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield results.results_cache()
    st.cache_resource.clear()
    st.cache_data.clear()


def test_the_app_reads_statistics_and_projections_back_from_disk(app_cache, load_sample,
                                                                  monkeypatch):
    """digits_cnn's activation statistics and a UMAP of its dense1 layer go through the
    Activations and Embeddings panels' own code; a fresh app on the same folder reads both
    from the results cache (the library functions made to fail if called)."""
    import streamlit as st

    from insight.panels import activations as act_panels
    from insight.panels import projector as proj_panels
    from insight.panels.registry import PanelContext
    from insight.ui.cache import with_memo

    loaded = load_sample("digits_cnn")
    params = dict(source="layer", layer="dense1", reduce="flatten", method="umap", dims=2,
                  seed=0, metric="euclidean", n_neighbors=15, min_dist=0.1, perplexity=30.0,
                  sample=300)
    stats, _ = act_panels._stats(with_memo(PanelContext(loaded=loaded)))
    _, coords = proj_panels.projected(with_memo(PanelContext(loaded=loaded)), **params)
    kinds = {k.split("/")[0] for k in app_cache.iterkeys()}
    assert {"activation_stats", "projection"} <= kinds

    st.cache_resource.clear()

    def fail(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(act_panels, "activation_stats", fail)
    monkeypatch.setattr(proj_panels, "project", fail)
    again, _ = act_panels._stats(with_memo(PanelContext(loaded=loaded)))
    _, coords2 = proj_panels.projected(with_memo(PanelContext(loaded=loaded)), **params)
    pd.testing.assert_frame_equal(again.table, stats.table)
    assert again.n_examples == stats.n_examples and set(again.units) == set(stats.units)
    for layer, (counts, edges) in stats.histograms.items():
        np.testing.assert_array_equal(again.histograms[layer][0], counts)
        np.testing.assert_array_equal(again.histograms[layer][1], edges)
    pd.testing.assert_frame_equal(coords2, coords)
    assert coords2.attrs == coords.attrs
    shared = results.counters(app_cache, shared=True)
    assert shared["activation_stats/hits"] == 1 and shared["projection/hits"] == 1

    st.cache_resource.clear()  # other parameters are another key: computed
    monkeypatch.setattr(proj_panels, "project", lambda *a, **k: coords.iloc[:0])
    _, other = proj_panels.projected(with_memo(PanelContext(loaded=loaded)),
                                     **{**params, "n_neighbors": 5})
    assert len(other) == 0 and os.environ["INSIGHT_CACHE_DIR"]
