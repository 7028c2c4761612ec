"""Cold start and rerun of the Overview, against their baselines, in one run.

Rows:
- cold start: `insight serve` launched -> Overview of digits_cnn rendered in headless Chromium
  (graph and chart drawn), beside the floor: a bare
  `python -c "import tensorflow, keras; keras.saving.load_model(...)"`. Target <= 1.5x.
- rerun: a sidebar widget change -> the Overview's script run finished, seen from the browser,
  with insight's settings (Streamlit's post-run gc.collect off) beside Streamlit's default
  (`--runner.postScriptGC true`). Target < 0.3 s.

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

OBSERVER = """() => {
  window.__states = [];
  const app = document.querySelector("[data-testid='stApp']");
  new MutationObserver(() => window.__states.push(
      [performance.now(), app.getAttribute('data-test-script-state')]))
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  document.addEventListener('keydown', e => { if (e.key === 'Enter')
      window.__enter = performance.now(); }, true);
}"""
RERUN_DONE = """() => {
  const t0 = window.__enter; let ran = false;
  for (const [t, s] of window.__states) {
    if (t < t0) continue;
    if (s === 'running') ran = true;
    if (ran && s === 'notRunning') return (t - t0) / 1000;
  }
  return null;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sample_model() -> Path:
    from insight.samples import get_sample

    return get_sample("digits_cnn").model


def floor(model: Path) -> float:
    """A bare TensorFlow + Keras import and load, in a fresh process."""
    code = (f"import tensorflow, keras; keras.saving.load_model({str(model)!r}, "
            "compile=False)")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _wait_health(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
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
    page.locator("[data-testid='stGraphVizChart'] svg").first.wait_for(
        state="visible", timeout=timeout_ms)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(state="visible", timeout=timeout_ms)


def _start(cmd: list[str], port: int) -> tuple[subprocess.Popen, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait_health(port, proc)
    return proc, start


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def serve_cmd(port: int) -> list[str]:
    return [sys.executable, "-m", "insight.cli", "serve", "--port", str(port)]


def default_gc_cmd(port: int) -> list[str]:
    """The same app under Streamlit's default post-run garbage collection."""
    return [sys.executable, "-m", "streamlit", "run", str(ROOT / "insight/ui/entry.py"),
            "--server.port", str(port), "--server.address", "127.0.0.1",
            "--server.headless", "true", "--runner.postScriptGC", "true",
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]


def cold_and_reruns(browser, cmd_for, reruns: int) -> tuple[float, list[float]]:
    port = _free_port()
    proc, start = _start(cmd_for(port), port)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/")
        _wait_rendered(page)
        cold = time.perf_counter() - start
        page.evaluate(OBSERVER)
        box = page.get_by_test_id("stTextInput").filter(has_text="Logdir").locator("input")
        times = []
        for i in range(reruns + 1):
            box.fill(f"{ROOT}" if i % 2 == 0 else str(ROOT / "sample_models"))
            box.press("Enter")
            page.wait_for_function(RERUN_DONE, timeout=60_000)
            if i:  # the first rerun builds the sidebar caches
                times.append(page.evaluate(RERUN_DONE))
        page.close()
        return cold, times
    finally:
        _stop(proc)


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
        _, gc_reruns = cold_and_reruns(browser, default_gc_cmd, args.reruns)
        browser.close()
    med = statistics.median
    rows = [
        ("cold: serve -> Overview rendered", med(colds), "bare import+load_model", med(floors),
         "<= 1.5x"),
        ("rerun after widget change", med(reruns), "Streamlit default postScriptGC", med(gc_reruns),
         "< 0.3 s"),
    ]
    print(f"digits_cnn, {args.repeat} cold starts, {args.reruns} reruns each; median seconds")
    print(f"{'measure':34} {'insight':>8}  {'baseline':32} {'base':>7} {'ratio':>6}  target")
    for name, ours, base_name, base, target in rows:
        print(f"{name:34} {ours:8.3f}  {base_name:32} {base:7.3f} {ours / base:6.2f}  {target}")
    print(f"cold runs: {', '.join(f'{c:.2f}' for c in colds)}; floors: "
          f"{', '.join(f'{f:.2f}' for f in floors)}")
    print(f"rerun p90: {sorted(reruns)[int(0.9 * (len(reruns) - 1))]:.3f} s "
          f"(default GC p90 {sorted(gc_reruns)[int(0.9 * (len(gc_reruns) - 1))]:.3f} s)")


if __name__ == "__main__":
    main()
