"""Cold start and rerun of the Overview, against their baselines, in one run.

Rows:
- cold start, per model: `insight serve MODEL` launched -> Overview rendered in headless
  Chromium (card, layer table, graph and chart drawn), beside the floor: a bare
  `python -c "import tensorflow, keras; keras.saving.load_model(...)"` of the same file. The
  models are a stranger's files, so the app loads them in the sandbox child first, as it
  would a user's: a copy of the digits_cnn sample outside the package (the bundled samples
  skip the child) and `keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))`
  (156 layers) saved to a temporary folder. Target <= 1.3x. A second floor beside it, opened
  the same way: a bare Streamlit app (`streamlit run`) that imports TensorFlow and Keras,
  loads the same file and draws what the wait below waits for (a metric, a table of the
  layers, a Plotly chart of two traces): Streamlit's own start and page, without insight.
- rerun (digits_cnn): a sidebar widget change -> the last websocket message of the rerun it
  triggers (Streamlit's script_finished) received by the browser, with insight's settings
  beside Streamlit's defaults: its post-run `gc.collect()` (`--runner.postScriptGC true`),
  its `keras.backend.clear_session()` after every run, and TensorFlow's heap left in the
  collected generations (`INSIGHT_STREAMLIT_DEFAULTS=1`). Target < 0.3 s.

Usage: python benchmarks/bench_serve.py [--repeat 3] [--reruns 10] [--models digits,mobilenet]
Needs Chromium (/usr/bin/chromium or INSIGHT_BROWSER) and playwright (the test extra).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("INSIGHT_BROWSER", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
DEFAULTS_ENV = dict(ENV, INSIGHT_STREAMLIT_DEFAULTS="1")

def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stranger_models(folder: Path, names: list[str]) -> dict[str, Path]:
    """The benchmark's model files, written to `folder` (outside the package)."""
    from insight.model.samples import get_sample

    out = {}
    if "digits" in names:
        out["digits_cnn"] = Path(shutil.copy(get_sample("digits_cnn").model,
                                             folder / "digits_cnn.keras"))
    if "mobilenet" in names:
        path = folder / "mobilenet_v2.keras"
        code = ("import keras, sys; keras.applications.MobileNetV2(weights=None, "
                "input_shape=(96, 96, 3)).save(sys.argv[1])")
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, env=ENV,
                       stderr=subprocess.DEVNULL)
        out["MobileNetV2 (156 layers)"] = path
    return out


def floor(model: Path) -> float:
    """A bare TensorFlow + Keras import and load, in a fresh process."""
    code = (f"import tensorflow, keras; keras.saving.load_model({str(model)!r}, "
            "compile=False)")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


STREAMLIT_FLOOR = """\
import sys

import keras
import plotly.graph_objects as go
import streamlit as st
import tensorflow  # noqa: F401  (what insight imports too)

model = keras.saving.load_model(sys.argv[1], compile=False)
st.metric("Parameters", f"{model.count_params():,}")
st.dataframe({"layer": [layer.name for layer in model.layers],
              "class": [type(layer).__name__ for layer in model.layers]})
names = [layer.name for layer in model.layers]
counts = [layer.count_params() for layer in model.layers]
st.plotly_chart(go.Figure([go.Bar(x=names, y=counts), go.Scatter(x=names, y=counts)]))
"""


def streamlit_floor_cmd(model: Path, script: Path):
    """A bare Streamlit app showing the model, no insight (`STREAMLIT_FLOOR`)."""
    script.write_text(STREAMLIT_FLOOR)
    return lambda port: [
        sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
        "--server.address", "127.0.0.1", "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--", str(model)]


def wait_health(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until the Streamlit server on `port` answers its health check.

    Raises:
        RuntimeError: the server process exited first.
        TimeoutError: not healthy within `timeout` seconds.
    """
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                if r.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError("server did not become healthy")


def _wait_rendered(page, timeout_ms: int = 120_000) -> None:
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(
        state="attached", timeout=timeout_ms)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=timeout_ms)
    # Loaded, not just the static graph: the metrics, the layer table, graph + parameter chart.
    page.get_by_test_id("stMetric").first.wait_for(state="visible", timeout=timeout_ms)
    page.get_by_test_id("stDataFrame").last.wait_for(state="visible", timeout=timeout_ms)
    page.wait_for_function(
        "document.querySelectorAll('.js-plotly-plot .main-svg .trace').length >= 2",
        timeout=timeout_ms)


def _start(cmd: list[str], port: int, env: dict) -> tuple[subprocess.Popen, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_health(port, proc)
    return proc, start


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server process, killing it after 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def serve_cmd(model: Path):
    """`insight serve MODEL` on a given port."""
    return lambda port: [sys.executable, "-m", "insight.cli", "serve", str(model), "--port",
                         str(port)]


def streamlit_defaults_cmd(model: Path):
    """The same app with Streamlit's default post-run clean-up (GC and Keras reset)."""
    return lambda port: [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "insight/ui/entry.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--runner.postScriptGC", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--", str(model)]


class _Frames:
    """Arrival times of the websocket messages the page receives."""

    def __init__(self, page) -> None:
        self.page = page
        self.times: list[float] = []
        page.on("websocket", lambda ws: ws.on(
            "framereceived", lambda _: self.times.append(time.perf_counter())))

    def settle(self, since: float, quiet: float = 0.4, timeout: float = 30) -> float:
        """Seconds from `since` to the last message of the burst that follows it."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            self.page.wait_for_timeout(20)  # lets Playwright deliver the frame events
            after = [t for t in self.times if t > since]
            if after and time.perf_counter() - after[-1] > quiet:
                return after[-1] - since
        raise TimeoutError("no rerun seen")


def cold_and_reruns(browser, cmd_for, reruns: int, env: dict = ENV
                    ) -> tuple[float, list[float]]:
    port = free_port()
    proc, start = _start(cmd_for(port), port, env)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        frames = _Frames(page)
        page.goto(f"http://127.0.0.1:{port}/")
        _wait_rendered(page)
        cold = time.perf_counter() - start
        box = page.get_by_test_id("stTextInput").filter(has_text="Logdir").locator("input")
        times = []
        for i in range(reruns + 1 if reruns else 0):
            box.fill(f"{ROOT}" if i % 2 == 0 else str(ROOT / "sample_models"))
            sent = time.perf_counter()
            box.press("Enter")
            took = frames.settle(sent)
            if i:  # the first rerun builds the sidebar caches
                times.append(took)
        page.close()
        return cold, times
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reruns", type=int, default=10)
    parser.add_argument("--models", default="digits,mobilenet",
                        help="comma-separated: digits, mobilenet (default: both)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    try:
        run(args, stranger_models(folder, args.models.split(",")))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(args: argparse.Namespace, models: dict[str, Path]) -> None:
    med = statistics.median
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    rows, runs = [], []
    reruns, gc_reruns = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for label, model in models.items():
            floor(model)  # warm the OS file cache once, for both sides
            floors, colds, bare = [], [], []
            bare_cmd = streamlit_floor_cmd(model, model.with_suffix(".floor.py"))
            for _ in range(args.repeat):  # interleaved, so drift hits both sides
                floors.append(floor(model))
                bare.append(cold_and_reruns(browser, bare_cmd, 0)[0])
                want = args.reruns if label == "digits_cnn" else 0
                cold, times = cold_and_reruns(browser, serve_cmd(model), want)
                colds.append(cold)
                reruns += times
            rows.append((f"cold: {label}", med(colds), "bare import+load_model", med(floors),
                         "<= 1.3x"))
            rows.append((f"cold: {label}", med(colds), "bare Streamlit app, same load",
                         med(bare), "-"))
            runs.append(f"{label}: cold {', '.join(f'{c:.2f}' for c in colds)}; floors "
                        f"{', '.join(f'{f:.2f}' for f in floors)}; bare Streamlit "
                        f"{', '.join(f'{b:.2f}' for b in bare)}")
        if reruns:
            digits = models["digits_cnn"]
            _, gc_reruns = cold_and_reruns(browser, streamlit_defaults_cmd(digits),
                                           args.reruns, DEFAULTS_ENV)
            rows.append(("rerun after widget change", med(reruns), "Streamlit defaults",
                         med(gc_reruns), "< 0.3 s"))
        browser.close()
    print(f"{args.repeat} cold starts per model, {args.reruns} reruns each (digits_cnn); "
          f"median seconds; load average after: {os.getloadavg()[0]:.1f}")
    print(f"{'measure':34} {'insight':>8}  {'baseline':32} {'base':>7} {'ratio':>6}  target")
    for name, ours, base_name, base, target in rows:
        print(f"{name:34} {ours:8.3f}  {base_name:32} {base:7.3f} {ours / base:6.2f}  {target}")
    for line in runs:
        print(line)
    if reruns:
        print(f"rerun p90: {sorted(reruns)[int(0.9 * (len(reruns) - 1))]:.3f} s (Streamlit "
              f"defaults p90 {sorted(gc_reruns)[int(0.9 * (len(gc_reruns) - 1))]:.3f} s)")


if __name__ == "__main__":
    main()
