"""Export speed: every panel of digits_cnn to PNG in one process, and a deep link in a fresh tab.

Rows (one markdown table, baselines measured in the same run):
- PNG render per panel with insight's `Renderer` (ONE Chromium kept open), warm (after the
  first figure), beside plotly's `fig.write_image` default, which starts a browser per call
  (measured on the first `--baseline-panels` figures only: ~2 s each). Target < 1 s per panel.
- `export_panel` per panel (build from the model + render), warm renderer.
- Deep link `/?embed=true&panel=param_chart` in a fresh tab of a running browser (its HTTP
  cache shared, as for a wiki reader) on a warm `insight serve`, to the chart drawn; beside the
  full Overview page in a fresh tab, and the link in a new browser profile (nothing cached).
  Target <= 1.2x the static floor: the same figure as exported self-contained HTML from
  file://. Beside it, in the same run, what Streamlit itself costs opened the same way (a
  fresh tab, `?embed=true`, on a warm plain `streamlit run` server): an empty script (its
  page boot: JS bundle, websocket, script run), and a bare script that draws the same figure
  with `st.plotly_chart` as insight does (its boot plus its lazily loaded plotly.js). What the
  deep link costs beyond that last one is insight's. And the same link as a plain page
  (`/_insight/panel?panel=param_chart`, `insight.ui.static_panel`: the exported page built by
  the server, plotly.js one file the browser keeps), in a fresh tab and a new profile.

Usage: python benchmarks/bench_export.py [--repeat 3] [--baseline-panels 6] [--settle 30]
       [--link-only]
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


BARE_FIGURE = """
import json, sys
import plotly.io as pio
import streamlit as st
st.set_page_config(layout="wide")
fig = pio.from_json(open(sys.argv[1]).read())
st.plotly_chart(fig, theme=None, key="param_chart-loaded", config={"displaylogo": False})
"""


def _streamlit(script: Path, port: int, *args: str) -> subprocess.Popen:
    """A plain `streamlit run` of `script`, set up as `insight serve` sets Streamlit."""
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
         "--client.toolbarMode", "minimal", "--theme.base", "light", "--", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _healthy(url: str) -> None:
    for _ in range(600):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not become healthy")


def bench_link(repeat: int, settle: float) -> list[tuple[str, str, str, str]]:
    from playwright.sync_api import expect, sync_playwright

    from insight.export.files import export_panel
    from insight.export.render import find_browser
    from insight.model.loading import load_model
    from insight.panels import PanelContext, build_panel

    folder = Path(tempfile.mkdtemp(prefix="bench_link_"))
    static = folder / "param_chart.html"
    ctx = PanelContext(load_model(SAMPLE / "model.keras"))
    export_panel(ctx, "param_chart", {}, static)
    (folder / "figure.json").write_text(build_panel("param_chart", ctx).to_json())
    (folder / "empty.py").write_text("import streamlit as st\n")
    (folder / "figure.py").write_text(BARE_FIGURE)

    port, empty_port, bare_port = _free_port(), _free_port(), _free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, "-m", "insight.cli", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    others = [_streamlit(folder / "empty.py", empty_port),
              _streamlit(folder / "figure.py", bare_port, str(folder / "figure.json"))]
    url = f"http://127.0.0.1:{port}"
    try:
        for u in (url, f"http://127.0.0.1:{empty_port}", f"http://127.0.0.1:{bare_port}"):
            _healthy(u)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=str(find_browser()), args=ARGS)

            shared = b.new_context(viewport={"width": 1280, "height": 900})

            def load(path: str, ready, cold: bool = False, base: str = url) -> float:
                """A new tab of one browser (its HTTP cache shared), or a new profile."""
                context = b.new_context(viewport={"width": 1280, "height": 900}) if cold \
                    else shared
                page = context.new_page()
                t = time.perf_counter()
                page.goto(base + path)
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

            def script_done(page) -> None:
                page.locator("[data-testid='stApp'][data-test-script-state='notRunning']"
                             ).wait_for(state="attached", timeout=120_000)

            def static_page() -> float:  # the same figure as a static plotly page: no server
                page = shared.new_page()
                t = time.perf_counter()
                page.goto(static.as_uri())
                chart(page)
                page.close()
                return time.perf_counter() - t

            link = "/?embed=true&panel=param_chart"
            page_link = "/_insight/panel?panel=param_chart"  # the same link as a plain page
            bare = (f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{empty_port}")
            load(link, chart)  # warm: model loaded, panel cached
            load(page_link, chart)
            load("/", overview)
            load("/?embed=true", chart, base=bare[0])
            load("/?embed=true", script_done, base=bare[1])
            static_page()
            time.sleep(settle)  # the server's background warm-up (UMAP compilation) is done
            deep, floor, plain, empty, plain_page = [], [], [], [], []
            for _ in range(repeat):  # interleaved, so drift hits every side
                deep.append(load(link, chart))
                plain_page.append(load(page_link, chart))
                floor.append(static_page())
                plain.append(load("/?embed=true", chart, base=bare[0]))
                empty.append(load("/?embed=true", script_done, base=bare[1]))
            full = [load("/", overview) for _ in range(repeat)]
            cold = [load(link, chart, cold=True) for _ in range(repeat)]
            cold_page = [load(page_link, chart, cold=True) for _ in range(repeat)]
            b.close()
    finally:
        for server in (proc, *others):
            server.terminate()
            server.wait(timeout=20)
    d, f, c = statistics.median(deep), statistics.median(full), statistics.median(cold)
    pg, cpg = statistics.median(plain_page), statistics.median(cold_page)
    s, bare_s, empty_s = (statistics.median(floor), statistics.median(plain),
                          statistics.median(empty))
    return [(f"deep link param_chart, fresh tab, warm server (median of {repeat})",
             f"{d:.2f} s", f"{d / s:.2f}x the static page; {d / bare_s:.2f}x bare Streamlit "
             f"drawing it; {f / d:.1f}x faster than the Overview", "<= 1.2x static"),
            (f"the same link as a plain page, {page_link}, fresh tab, warm server (median of "
             f"{repeat})", f"{pg:.2f} s", f"{pg / s:.2f}x the static page; {pg / d:.2f}x the "
             "Streamlit deep link", "<= 1.2x static"),
            (f"floor: the same figure as exported self-contained HTML, file:// (median of "
             f"{repeat})", f"{s:.2f} s", "plotly.js parse + draw alone", ""),
            (f"Streamlit alone: empty script, fresh tab, ?embed=true (median of {repeat})",
             f"{empty_s:.2f} s", f"{empty_s / s:.2f}x the static page", "outside insight"),
            (f"Streamlit alone: the same figure, st.plotly_chart, fresh tab (median of "
             f"{repeat})", f"{bare_s:.2f} s", f"{bare_s / s:.2f}x the static page",
             "outside insight"),
            (f"Overview page, fresh tab, warm server (median of {repeat})", f"{f:.2f} s", "",
             "baseline"),
            (f"deep link param_chart, new browser profile (no cache) (median of {repeat})",
             f"{c:.2f} s", "", ""),
            (f"plain page, new browser profile (no cache: plotly.js fetched) (median of "
             f"{repeat})", f"{cpg:.2f} s", f"{cpg / s:.2f}x the static page", "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-panels", type=int, default=6)
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds to let the server finish warming up before timing")
    parser.add_argument("--link-only", action="store_true",
                        help="only the deep-link rows (no PNG export rows)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    rows = ([] if args.link_only else bench_png(args.baseline_panels)) + \
        bench_link(args.repeat, args.settle)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print("| measurement | time | vs baseline | target |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
