"""The disk cache of converted profiles (`insight.profiler.cache`, `capture.tool_data`,
`capture.profile_trace`) on the bundled sample's real profile: a second open converts nothing
(xprof made unimportable), nor does a second process on the same cache folder (another
replica); a changed file is converted again, a corrupt entry is ignored and
rewritten, concurrent writers leave whole entries; and the timeline read from xprof's
protobuf is the one `trace_events` reads from its JSON."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from insight import results
from insight.errors import DataError
from insight.model.samples import sample_root
from insight.profiler import cache, capture
from insight.profiler.capture import PAGE_TOOLS, find_profiles
from insight.profiler.prepare import is_cached, prepare
from insight.profiler.tables import layer_names, trace_events

SAMPLE_LOGS = sample_root() / "digits_cnn" / "logs"
LAYERS = frozenset({"conv1", "conv2", "pool1", "dense"})


@pytest.fixture
def profile(tmp_path, monkeypatch):
    """A copy of the sample's profile (so it can be changed) and an empty cache; counts the
    calls of xprof's conversion (`capture._convert`)."""
    (src,) = find_profiles(SAMPLE_LOGS)
    dest = tmp_path / "logs" / "plugins" / "profile" / src.folder.name
    dest.mkdir(parents=True)
    shutil.copy2(src.hosts[0], dest / src.hosts[0].name)
    monkeypatch.setenv("INSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "_HASHES", {})  # as a new process: the on-disk memo only
    calls: list[str] = []
    convert = capture._convert

    def counted(path, run, tool, params):
        calls.append(tool)
        return convert(path, run, tool, params)

    monkeypatch.setattr(capture, "_convert", counted)
    (run,) = find_profiles(tmp_path / "logs")
    return run, calls


def _no_xprof(monkeypatch) -> None:
    """xprof cannot be imported (nor its already-imported modules reached)."""
    for name in [m for m in sys.modules if m == "xprof" or m.startswith("xprof.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "xprof", None)


def _same_trace(a, b) -> None:
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.steps, b.steps)
    for f in ("threads", "rows", "span", "max_lanes", "notes", "step_source"):
        assert getattr(a, f) == getattr(b, f), f


def test_second_open_reads_the_disk_without_xprof(profile, monkeypatch):
    run, calls = profile
    stages: list[str] = []
    assert not is_cached(run)
    prepare(run, progress=lambda fraction, stage: stages.append(stage))
    assert sorted(calls) == sorted(["overview_page", "trace_viewer", "memory_profile",
                                    "framework_op_stats"])
    assert stages[0].startswith("Converting overview_page with xprof") and stages[-1] == "Done"
    assert any(s.startswith("Reading the timeline") for s in stages)
    first = {t: capture.tool_data(run, t) for t in PAGE_TOOLS if t != "trace"}
    trace = capture.profile_trace(run, LAYERS)
    assert is_cached(run)

    calls.clear()
    monkeypatch.setattr(cache, "_HASHES", {})
    _no_xprof(monkeypatch)
    stages.clear()
    prepare(run, progress=lambda fraction, stage: stages.append(stage))
    assert stages == ["Done"]  # nothing slow reported: no progress bar on the page
    assert {t: capture.tool_data(run, t) for t in first} == first
    _same_trace(capture.profile_trace(run, LAYERS), trace)
    assert calls == []


def test_timeline_from_the_protobuf_is_the_json_one(profile):
    """The cached timeline (xprof's protobuf -> Parquet -> layers) equals `trace_events` of
    the trace viewer's JSON, column for column, with and without layers."""
    run, _ = profile
    from insight.model.preflight import preflight

    layers = layer_names(preflight(sample_root() / "digits_cnn" / "model.keras"))
    assert layers
    js = json.loads(capture._convert(run.hosts[0], run, "trace_viewer",
                                     {"use_saved_result": False}))
    fresh = capture.profile_trace(run, layers)  # converted now
    assert (fresh.events["layer"] != "").any()
    _same_trace(fresh, trace_events(js, layers))
    _same_trace(capture.profile_trace(run), trace_events(js))  # read back from Parquet
    assert capture.tool_data(run, "trace_viewer") == js  # the JSON, from the cached protobuf


def test_a_changed_file_is_converted_again(profile):
    run, calls = profile
    capture.tool_data(run, "overview_page")
    before = cache.content_hash(run.hosts[0])
    assert before == hashlib.sha256(run.hosts[0].read_bytes()).hexdigest()
    with run.hosts[0].open("ab") as f:  # an unknown protobuf field: still a valid XSpace
        f.write(bytes([0xC0, 0x3E, 0x01]))  # field 1000, varint 1
    assert not is_cached(run, ("overview_page",))
    calls.clear()
    capture.tool_data(run, "overview_page")
    assert calls == ["overview_page"]
    assert cache.content_hash(run.hosts[0]) != before


def test_a_corrupt_entry_is_ignored_and_rewritten(profile):
    run, calls = profile
    prepare(run, ("overview_page", "trace"))
    overview = capture.tool_data(run, "overview_page")
    trace = capture.profile_trace(run)
    digest = cache.content_hash(run.hosts[0])
    blob = cache.entry_path(digest, "overview_page.json")
    table = cache.entry_path(digest, "trace.parquet")
    good = blob.read_bytes()
    blob.write_bytes(good[:-7] + b"garbage")  # same header, corrupt payload
    table.write_bytes(table.read_bytes()[: table.stat().st_size // 2])  # truncated
    calls.clear()
    assert capture.tool_data(run, "overview_page") == overview
    _same_trace(capture.profile_trace(run), trace)
    assert calls == ["overview_page"]  # the timeline came back from the cached protobuf
    assert cache.read_blob(blob) is not None and cache.read_blob(blob) == cache.read_blob(blob)
    blob.write_bytes(b"not an entry")
    assert cache.read_blob(blob) is None


def test_a_damaged_cache_costs_the_saving_not_the_profile(profile, tmp_path, monkeypatch):
    """A results cache whose database is not SQLite (damaged, or not ours): the profile is
    converted and shown all the same, each time."""
    run, calls = profile
    damaged = tmp_path / "damaged"
    (damaged / "results").mkdir(parents=True)
    (damaged / "results" / "cache.db").write_bytes(b"not a database" * 100)
    monkeypatch.setenv("INSIGHT_CACHE_DIR", str(damaged))
    first = capture.tool_data(run, "overview_page")
    assert capture.tool_data(run, "overview_page") == first
    assert capture.profile_trace(run).events.shape[0] > 100
    assert calls.count("overview_page") == 2 and not is_cached(run, ("overview_page",))


def _writer(root: str, seed: int, rounds: int) -> None:
    entry = cache.entry_path("ab" * 32, "x.json", root=Path(root))
    for i in range(rounds):
        cache.write_blob(entry, bytes([seed, i % 256]) * 200_000)


def test_concurrent_writers_leave_whole_entries(tmp_path):
    """Two processes rewriting one entry of the results cache while it is read: once it
    exists every read is a whole payload (a partial one would fail its checksum: `None`)."""
    entry = cache.entry_path("ab" * 32, "x.json", root=tmp_path)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), seed, 60)) for seed in (1, 2)]
    for p in procs:
        p.start()
    reads = seen = 0
    while any(p.is_alive() for p in procs):
        data = cache.read_blob(entry)
        if data is None:
            assert not seen, "a partial entry was visible"  # entries are replaced, never removed
            continue
        seen = 1
        assert len(data) == 400_000 and data == data[:2] * 200_000
        reads += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert cache.read_blob(entry) is not None and reads > 0
    store = results.results_cache(tmp_path)
    assert len([k for k in store.iterkeys() if k.startswith("profile/")]) == 1
    assert not list(tmp_path.rglob("*.tmp"))  # and one value file: the old ones were removed
    assert len(list(tmp_path.rglob("*.val"))) == 1


def test_entries_are_results_cache_keys_a_second_process_reads(profile, tmp_path):
    """The converted tools are keys of the results cache (`insight.results`) under
    `$INSIGHT_CACHE_DIR/results`; a fresh process on the same folder (another replica)
    reads them without xprof, and converts nothing."""
    run, calls = profile
    prepare(run)
    keys = set(results.results_cache().iterkeys())
    digest = cache.content_hash(run.hosts[0])
    for name in ("overview_page.json", "trace_viewer.pb", "trace.parquet"):
        assert f"profile/{cache.FORMAT}/{digest}/{name}" in keys
    assert str(cache.entry_path(digest, "trace.parquet").current()).endswith(".val")
    code = ("import sys; sys.modules['xprof'] = None\n"
            "from insight.profiler import capture\n"
            "capture._convert = lambda *a: sys.exit('converted')\n"
            "from insight.profiler.capture import find_profiles\n"
            "from insight.profiler.prepare import is_cached, prepare\n"
            f"(run,) = find_profiles({str(run.logdir)!r})\n"
            "assert is_cached(run)\n"
            "prepare(run)\n"
            "print(len(capture.profile_trace(run).events))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "INSIGHT_CACHE_DIR":
                                           os.environ["INSIGHT_CACHE_DIR"]})
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) == len(capture.profile_trace(run).events)


def test_two_converting_at_once_convert_once(profile):
    """Two threads opening a fresh profile together: the lock makes the second wait and
    read the first one's entry (the same holds across processes: `fcntl.flock`)."""
    run, calls = profile
    out: list = []
    threads = [threading.Thread(target=lambda: out.append(capture.tool_data(run,
                                                                            "overview_page")))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["overview_page"] and out[0] == out[1]


def _convert_page() -> None:
    """The Profiler page's first step, alone (AppTest runs this function as a script)."""
    import os

    from insight.ui.profiler import Choice, convert_profile

    convert_profile(Choice(os.environ["PROFILE_LOGS"], "", "run"))


@pytest.mark.slow
def test_the_page_shows_progress_on_the_first_open_only(profile, monkeypatch):
    from streamlit.testing.v1 import AppTest

    run, calls = profile
    monkeypatch.setenv("PROFILE_LOGS", str(run.logdir))
    first = AppTest.from_function(_convert_page, default_timeout=60).run()
    assert not first.exception, first.exception
    (status,) = first.status
    assert status.label.startswith("Profile converted") and status.state == "complete"
    assert len(calls) == len(PAGE_TOOLS)
    second = AppTest.from_function(_convert_page, default_timeout=60).run()
    assert not second.exception and not second.status and not second.get("progress")
    assert len(calls) == len(PAGE_TOOLS)


@pytest.mark.slow
def test_a_large_profile_converts_in_a_child_process(profile):
    """`prepare(isolate=True)` (automatic past `ISOLATE_BYTES`): the child converts and
    writes the cache, this process converts nothing; a file xprof cannot read comes back as
    the child's DataError."""
    run, calls = profile
    stages: list[str] = []
    prepare(run, progress=lambda fraction, stage: stages.append(stage), isolate=True)
    assert calls == [] and is_cached(run)
    assert stages[0].startswith("Converting overview_page") and stages[-1] == "Done"
    assert capture.profile_trace(run).events.shape[0] > 1000 and calls == []
    run.hosts[0].write_bytes(b"\x08\x01 not an XSpace" * 100)
    with pytest.raises(DataError, match="not a profile xprof can read|could not convert"):
        prepare(run, ("overview_page",), isolate=True)
