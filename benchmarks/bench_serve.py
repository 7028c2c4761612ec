"""Cold start and rerun of the Overview, against their baselines, in one run.

Rows:
- cold start: `insight serve` launched -> Overview of digits_cnn rendered in headless Chromium
  (card, layer table, graph and chart drawn), beside the floor: a bare
  `python -c "import tensorflow, keras; keras.saving.load_model(...)"`. Target <= 1.5x.
- rerun: a sidebar widget change -> the last websocket message of the rerun it triggers
  (Streamlit's script_finished) received by the browser, with insight's settings beside
  Streamlit's defaults: its post-run `gc.collect()` (`--runner.postScriptGC true`), its
  `keras.backend.clear_session()` after every run, and TensorFlow's heap left in the collected
  generations (`INSIGHT_STREAMLIT_DEFAULTS=1`). Target < 0.3 s.

Usage: python benchmarks/bench_serve.py [--repeat 3] [--reruns 10]
Needs Chromium (/usr/bin/chromium or INSIGHT_BROWSER) and playwright (the test extra).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
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


def _sample_model() -> Path:
    from insight.model.samples import get_sample

    return get_sample("digits_cnn").model


def floor(model: Path) -> float:
    """A bare TensorFlow + Keras import and load, in a fresh process."""
    code = (f"import tensorflow, keras; keras.saving.load_model({str(model)!r}, "
            "compile=False)")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


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


def serve_cmd(port: int) -> list[str]:
    return [sys.executable, "-m", "insight.cli", "serve", "--port", str(port)]


def streamlit_defaults_cmd(port: int) -> list[str]:
    """The same app with Streamlit's default post-run clean-up (GC and Keras reset)."""
    return [sys.executable, "-m", "streamlit", "run", str(ROOT / "insight/ui/entry.py"),
            "--server.port", str(port), "--server.address", "127.0.0.1",
            "--server.headless", "true", "--runner.postScriptGC", "true",
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]


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
        for i in range(reruns + 1):
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
    args = parser.parse_args()
    model = _sample_model()
    floors, colds, reruns, gc_reruns = [], [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        floor(model)  # warm the OS file cache once, for both sides
        for _ in range(args.repeat):  # interleaved, so drift hits both sides
            floors.append(floor(model))
            cold, times = cold_and_reruns(browser, serve_cmd, args.reruns)
            colds.append(cold)
            reruns += times
        _, gc_reruns = cold_and_reruns(browser, streamlit_defaults_cmd, args.reruns,
                                       DEFAULTS_ENV)
        browser.close()
    med = statistics.median
    rows = [
        ("cold: serve -> Overview rendered", med(colds), "bare import+load_model", med(floors),
         "<= 1.5x"),
        ("rerun after widget change", med(reruns), "Streamlit defaults", med(gc_reruns),
         "< 0.3 s"),
    ]
    print(f"digits_cnn, {args.repeat} cold starts, {args.reruns} reruns each; median seconds")
    print(f"{'measure':34} {'insight':>8}  {'baseline':32} {'base':>7} {'ratio':>6}  target")
    for name, ours, base_name, base, target in rows:
        print(f"{name:34} {ours:8.3f}  {base_name:32} {base:7.3f} {ours / base:6.2f}  {target}")
    print(f"cold runs: {', '.join(f'{c:.2f}' for c in colds)}; floors: "
          f"{', '.join(f'{f:.2f}' for f in floors)}")
    print(f"rerun p90: {sorted(reruns)[int(0.9 * (len(reruns) - 1))]:.3f} s "
          f"(Streamlit defaults p90 {sorted(gc_reruns)[int(0.9 * (len(gc_reruns) - 1))]:.3f} s)")


if __name__ == "__main__":
    main()
