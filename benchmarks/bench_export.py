"""Export speed: every panel of digits_cnn to PNG in one process, and a deep link in a fresh tab.

Rows (one markdown table, baselines measured in the same run):
- PNG render per panel with insight's `Renderer` (ONE Chromium kept open), warm (after the
  first figure), beside plotly's `fig.write_image` default, which starts a browser per call
  (measured on the first `--baseline-panels` figures only: ~2 s each). Target < 1 s per panel.
- `export_panel` per panel (build from the model + render), warm renderer.
- Deep link `/?embed=true&panel=param_chart` in a fresh tab of a running browser (its HTTP
  cache shared, as for a wiki reader) on a warm `insight serve`, to the chart drawn; beside the
  full Overview page in a fresh tab, and the link in a new browser profile (nothing cached).
  Target < 2 s. Most of it is Chromium compiling plotly.js (the server's script run ends in
  ~0.1 s), so it tracks the machine's CPU load.

Usage: python benchmarks/bench_export.py [--repeat 3] [--baseline-panels 6] [--settle 30]
Needs Chromium (/usr/bin/chromium or INSIGHT_BROWSER) and playwright (the test extra).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_models" / "digits_cnn"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_png(baseline_panels: int) -> list[tuple[str, str, str, str]]:
    import plotly.io as pio

    from insight.export.files import export_panel, render_result, result_figure
    from insight.export.render import Renderer, find_browser
    from insight.model.loading import load_model
    from insight.panels import PanelContext, build_panel, get_panel, panel_names

    os.environ.setdefault("BROWSER_PATH", str(find_browser()))  # plotly's kaleido: same browser
    ctx = PanelContext(load_model(SAMPLE / "model.keras"), logdir=SAMPLE / "logs")
    results = {}
    for name in panel_names():
        if not get_panel(name).deterministic:
            continue
        try:
            results[name] = build_panel(name, ctx)
        except Exception:  # noqa: BLE001  panels this model cannot feed (reported by count)
            pass
    out = Path(tempfile.mkdtemp(prefix="bench_export_"))
    start = time.perf_counter()
    renderer = Renderer()
    started = time.perf_counter() - start
    times = {}
    for name, result in results.items():
        t = time.perf_counter()
        (out / f"{name}.png").write_bytes(render_result(result, name, "png", renderer))
        times[name] = time.perf_counter() - t
    first = next(iter(times))
    warm = [v for k, v in times.items() if k != first]
    fresh = PanelContext(ctx.loaded, ctx.data_path, ctx.logdir)
    full = []
    for name in results:
        t = time.perf_counter()
        export_panel(fresh, name, {}, out / f"{name}-full.png", renderer=renderer)
        full.append(time.perf_counter() - t)
    renderer.close()
    base = []
    for name, result in list(results.items())[:baseline_panels]:
        fig = result_figure(result, get_panel(name).kind, get_panel(name).title)
        t = time.perf_counter()
        pio.write_image(fig, out / f"{name}-plotly.png", width=fig.layout.width or 900,
                        height=fig.layout.height or 560)
        base.append(time.perf_counter() - t)
    n = len(results)
    ours = statistics.mean(warm)
    return [
        (f"PNG render, insight Renderer (1 browser, warm), {n} panels",
         f"{ours:.3f} s/panel (max {max(warm):.2f})", f"{sum(times.values()) + started:.1f} s "
         f"total incl. {started:.1f} s browser start", "< 1 s/panel"),
        (f"PNG render, plotly write_image (browser per call), {len(base)} panels",
         f"{statistics.mean(base):.3f} s/panel", f"{statistics.mean(base) / ours:.1f}x slower",
         "baseline"),
        (f"export_panel (build + render), {n} panels", f"{statistics.mean(full):.3f} s/panel "
         f"(max {max(full):.2f}, {max(results, key=lambda k: full[list(results).index(k)])})",
         f"{sum(full):.1f} s total", "< 1 s/panel"),
    ]


def bench_link(repeat: int, settle: float) -> list[tuple[str, str, str, str]]:
    from playwright.sync_api import expect, sync_playwright

    from insight.export.files import export_panel
    from insight.export.render import find_browser
    from insight.model.loading import load_model
    from insight.panels import PanelContext

    static = Path(tempfile.mkdtemp(prefix="bench_link_")) / "param_chart.html"
    export_panel(PanelContext(load_model(SAMPLE / "model.keras")), "param_chart", {}, static)

    port = _free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, "-m", "insight.cli", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=str(find_browser()), args=ARGS)

            shared = b.new_context(viewport={"width": 1280, "height": 900})

            def load(path: str, ready, cold: bool = False) -> float:
                """A new tab of one browser (its HTTP cache shared), or a new profile."""
                context = b.new_context(viewport={"width": 1280, "height": 900}) if cold \
                    else shared
                page = context.new_page()
                t = time.perf_counter()
                page.goto(url + path)
                ready(page)
                elapsed = time.perf_counter() - t
                page.close()
                if cold:
                    context.close()
                return elapsed

            def chart(page) -> None:
                page.locator(".js-plotly-plot .main-svg").first.wait_for(state="visible",
                                                                         timeout=120_000)

            def overview(page) -> None:
                page.locator("[data-testid='stApp'][data-test-script-state='notRunning']"
                             ).wait_for(state="attached", timeout=120_000)
                expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=120_000)
                chart(page)

            link = "/?embed=true&panel=param_chart"
            load(link, chart)  # warm: model loaded, panel cached
            load("/", overview)
            time.sleep(settle)  # the server's background warm-up (UMAP compilation) is done
            deep = [load(link, chart) for _ in range(repeat)]
            full = [load("/", overview) for _ in range(repeat)]
            cold = [load(link, chart, cold=True) for _ in range(repeat)]
            floor = []
            for _ in range(repeat):  # the same figure as a static plotly page: no server
                page = shared.new_page()
                t = time.perf_counter()
                page.goto(static.as_uri())
                chart(page)
                floor.append(time.perf_counter() - t)
                page.close()
            b.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    d, f, c = statistics.median(deep), statistics.median(full), statistics.median(cold)
    s = statistics.median(floor)
    return [(f"deep link param_chart, fresh tab, warm server (median of {repeat})",
             f"{d:.2f} s", f"{f / d:.1f}x faster than the Overview; {d - s:+.2f} s over the "
             "static page", "< 2 s"),
            (f"floor: the same figure as exported self-contained HTML, file:// (median of "
             f"{repeat})", f"{s:.2f} s", "plotly.js parse + draw alone", ""),
            (f"Overview page, fresh tab, warm server (median of {repeat})", f"{f:.2f} s", "",
             "baseline"),
            (f"deep link param_chart, new browser profile (no cache) (median of {repeat})",
             f"{c:.2f} s", "", "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-panels", type=int, default=6)
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds to let the server finish warming up before timing")
    args = parser.parse_args()
    rows = bench_png(args.baseline_panels) + bench_link(args.repeat, args.settle)
    print("| measurement | time | vs baseline | target |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
