"""Five browser sessions at once on one `insight serve` (the short form of
`benchmarks/bench_load.py`, which runs 20 across every page).

Each session opens the app on digits_cnn, goes to Gradients and types an example number of
its own there (a rerun that runs the shared model on an example no other session asked for;
the page names the class the model predicts for it). The Activations page is left to the
benchmark to keep this short; the race between its trace and Gradients' is tested in
`tests/unit/test_concurrency.py`. Asserted: no exception or error on any page; every
predicted class the Gradients page shows ("explains class K") is the one `model.predict`
gives in this process; chart titles agree between sessions; and the server's memory after a
second round of five sessions has left is back within `TOLERANCE_MB` of where the first
round left it.

Why the first round is the baseline: it fills what every session shares and keeps (the
TensorFlow traces, the dataset, the model and panel caches: shared by design, bounded by their
`max_entries`). What must not pile up is each session's own: its session state and widget
values (small: insight keeps paths, choices and numbers there, never data or figures), which
Streamlit holds for `server.disconnectedSessionTTL` (120 s) after a browser leaves, in case it
reconnects. So the check is that a second round of five new sessions, doing what the first
round did (the same examples: every result is in the shared cache by then), leaves the server
within `TOLERANCE_MB` of where the first round left it: only what each session keeps can
grow, plus allocator noise between two readings of a ~1.1 GB process. Streamlit still holds
the closed sessions when the second reading is taken (see `TOLERANCE_MB`). (A second
round on new examples grew a CI server by 65 MB: new results in the shared cache, or a trace
per example; `benchmarks/bench_load.py --again` measures that case.)
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_load  # noqa: E402  (benchmarks/ is no package: its scripts run by path)
from unit._browser import start_server  # noqa: E402

pytestmark = pytest.mark.slow

SESSIONS = 5
PAGES = ["", "gradients"]  # from Overview to a page that runs the model and names its class
# Streamlit keeps each closed session (its widget state, message cache and media) for
# `server.disconnectedSessionTTL` (120 s) in case the browser reconnects, so at the second
# reading both rounds' sessions are still held: CI measured +65 and +90 MB for five of them.
# This bound catches a leak of tens of MB per session (a figure set or a model copy each);
# smaller ones need the sessions expired first (`benchmarks/bench_load.py --again`).
TOLERANCE_MB = 150


def test_five_sessions_at_once(chromium_path, tmp_path):
    server = start_server(tmp_path / "serve.log", timeout=120)
    url = server.url
    memory = bench_load.Memory(server.pid)
    try:
        first = asyncio.run(bench_load.sessions(url, SESSIONS, 2, 1, PAGES))
        before = bench_load.settle_rss(memory, 3)
        second = asyncio.run(bench_load.sessions(url, SESSIONS, 2, 1, PAGES))  # same work
        after = bench_load.settle_rss(memory, 3)
    finally:
        memory.stop()
        server.stop()
    runs = [*first, *second]
    problems = [p for s in runs for p in s.problems + s.slow]
    assert not problems, problems
    predicted = {i for s in runs for i in s.predicted}
    assert len(predicted) >= SESSIONS, f"too few predictions read from the pages: {predicted}"
    assert not (wrong := bench_load.compare(runs, bench_load.expected_classes())), wrong
    assert after - before < TOLERANCE_MB, (
        f"server RSS {before:.0f} MB after the first {SESSIONS} sessions left, {after:.0f} MB "
        f"after the next {SESSIONS}: something per session stays")
