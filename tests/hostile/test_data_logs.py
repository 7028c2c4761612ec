"""Every hostile data or log file ends in a clear insight error or a clean partial result: no
other exception, no payload run, no hang, memory bounded (`tests/hostile/data_logs.py` builds
them; `outcome` feeds each to the reader a user's path reaches). The CLI answers a lying data
file with one `error:` line and exit 2.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from hostile.data_logs import DATA_LOG_CASES, build_data_log_corpus, outcome

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "sample_models" / "digits_cnn" / "model.keras"
MAX_SECONDS = 20  # per case, on a loaded 2-core CI machine (each takes under 1.5 s alone)
# damaged logs keep what can be read; every other case is refused with an error
PARTIAL = {n for n in DATA_LOG_CASES if n.startswith("events_")} | {"csvlog_nan_text",
                                                                     "history_bad_epochs"}
MAX_PEAK = 400 << 20  # bytes allocated at once (a 256 MiB read chunk of a sparse file at most)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_data_logs")
    cases = {c.name: c for c in build_data_log_corpus(root)}
    yield cases
    ran = sorted(p.name for p in (root / "markers").iterdir())
    assert ran == [], f"payloads ran: {ran}"


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


@pytest.mark.parametrize("name", DATA_LOG_CASES)
def test_hostile_data_and_logs_end_cleanly(corpus, name):
    case = corpus[name]
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(MAX_SECONDS * 3)  # a hang fails the test instead of stalling the suite
    tracemalloc.start()
    start = time.perf_counter()
    try:
        status, text = outcome(case)
    except _Hang:
        pytest.fail(f"{name}: still running after {MAX_SECONDS * 3} s")
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert status == ("partial" if name in PARTIAL else "error"), (status, text)
    for fragment in case.expect:
        assert fragment in text, (status, text)
    if status == "error":
        assert "Received: " in text and "Traceback" not in text, text
    assert elapsed < MAX_SECONDS, (name, elapsed)
    assert peak < MAX_PEAK, (name, peak >> 20)
    assert case.marker is None or not case.marker.exists()


def test_the_big_files_are_big_and_cost_no_disk(corpus):
    sparse = corpus["events_sparse_2gb"].path.stat()
    assert sparse.st_size == 2 * 10**9 and sparse.st_blocks * 512 < 1 << 20
    assert corpus["npz_bomb_2gib"].path.stat().st_size < 3 << 20


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "insight.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.parametrize(("command", "data"), [("stats", "npz_header_1e12"),
                                               ("doctor", "npz_bomb_2gib")])
def test_cli_refuses_lying_data_with_one_error_line(corpus, command, data):
    case = corpus[data]
    result = _cli(command, str(MODEL), "--data", str(case.path))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert lines[-1].startswith("error: ") and "Traceback" not in result.stderr, lines
    assert all(fragment in lines[-1] for fragment in case.expect), lines[-1]
    assert case.marker is None or not case.marker.exists()
