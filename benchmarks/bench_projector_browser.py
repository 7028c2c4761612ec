"""The Embeddings page in headless Chromium, driven like a user.

Rows (one run, `insight serve` on the bundled digits_cnn, vectors files written to a temp dir):
- warm-up: seconds from `insight serve` starting to its "insight: warm" line (TensorFlow,
  the model, UMAP's numba functions compiled).
- first UMAP after serve: UMAP of a 5,000 x 64 vectors file, from the "Project" click to
  the UMAP figure drawn; baseline: plain umap-learn's first call in a fresh process.
- 100,000 points: first draw (PCA), colour change, hover label, box zoom; baseline: the same
  interaction on 5,000 points in the same browser and server. The colour change is repeated
  (`--repeat`, each time to a column not shown before, so no cache answers) and its median
  reported, split into the server's part (Enter to the figure's websocket message) and the
  browser's (that message to the legend drawn), with the figure's JSON size.
  The chart is insight's scatter component (`insight.ui.scatter_component`): it stays
  mounted (checked: the same div before and after every change) and a colour change sends
  the new split of the points (a byte per point), which the page turns into traces and draws
  with `Plotly.react` on the same div.
- floors, in the same browser: plotly.js alone (its own bundle, file://) drawing the same
  figure JSON on a fresh div (what `st.plotly_chart` did on every colour change: a changed
  figure is a new element, a remount, a new WebGL context), `Plotly.react` with the other
  colouring on the div already drawn (what the component pays in the browser), and a
  redraw of the same points (`Plotly.restyle` of the markers' opacity): what any change to
  the points costs this browser, whose WebGL is software (SwiftShader) here.

Needs Chromium (/usr/bin/chromium or INSIGHT_BROWSER) and playwright (the test extra).
Usage: python benchmarks/bench_projector_browser.py [--no-umap-baseline] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_projection import blobs, first_call  # noqa: E402
from bench_serve import ARGS, CHROMIUM, ENV, ROOT, free_port, stop, wait_health  # noqa: E402

TITLE = ".js-plotly-plot .gtitle"
EXTRA = 10  # two-value columns c1..c10 in both files: colour changes no cache has seen
# Every websocket message's arrival and size, so a colour change splits into server and browser.
WS_HOOK = """
window.__ws = [];
const Native = window.WebSocket;
window.WebSocket = function (...args) {
  const socket = new Native(...args);
  socket.addEventListener('message', e => window.__ws.push(
    [performance.now(), e.data.byteLength ?? e.data.size ?? e.data.length]));
  return socket;
};
window.WebSocket.prototype = Native.prototype;
"""


def extra_columns(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"c{i}": np.where(rng.random(n) < 0.5, f"a{i}", f"b{i}") for i in range(1, EXTRA + 1)}


def write_vectors(folder: Path) -> tuple[Path, Path, Path]:
    small = folder / "umap5k.npy"
    np.save(small, blobs(5_000))
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, (10, 32))
    labels = rng.integers(0, 10, 100_000)
    big = folder / "big.npy"
    np.save(big, (centres[labels] + rng.normal(size=(100_000, 32))).astype(np.float32))
    meta = folder / "big.tsv"
    pd.DataFrame({"label": labels, "group": np.where(labels % 2 == 0, "even", "odd"),
                  "score": rng.random(100_000).round(3), **extra_columns(100_000, 1)}
                 ).to_csv(meta, sep="\t", index=False)
    return small, big, meta


class Server:
    """`insight serve` in a subprocess, its stderr watched for the warm-up line."""

    def __init__(self) -> None:
        self.port = free_port()
        self.started = time.perf_counter()
        self.warm_at: float | None = None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "insight.cli", "serve", "--port", str(self.port)], cwd=ROOT,
            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._watch, daemon=True).start()
        wait_health(self.port, self.proc)

    def _watch(self) -> None:
        for line in self.proc.stderr:
            if line.startswith("insight: warm") and self.warm_at is None:
                self.warm_at = time.perf_counter()

    def wait_warm(self, timeout: float = 180) -> float:
        deadline = time.perf_counter() + timeout
        while self.warm_at is None and time.perf_counter() < deadline:
            time.sleep(0.1)
        if self.warm_at is None:
            raise TimeoutError("no 'insight: warm' line")
        return self.warm_at - self.started


def wait_title(page, text: str, timeout: float = 120_000) -> float:
    start = time.perf_counter()
    page.wait_for_function(
        "t => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
        ".some(e => e.textContent.includes(t))", arg=text, timeout=timeout)
    return time.perf_counter() - start


def choose(page, label: str, option: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()


def click_project(page, umap: bool) -> None:
    """Click the form's "Project" button once the rerun that redrew the form for the method
    is over (while it runs, the stale form and the new one are both on the page)."""
    page.get_by_label("Neighbours").first.wait_for(state="visible" if umap else "detached",
                                                   timeout=120_000)
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=stBaseButton-secondaryFormSubmit]')"
        ".length === 1", timeout=120_000)
    page.get_by_role("button", name="Project").click()


def fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")


def interactions(page, colour_to: str, legend: str) -> dict[str, float]:
    """Colour change (server rerun + redraw), hover label, box zoom; seconds each."""
    out = {}
    start = time.perf_counter()
    fill(page, "Colour by (metadata column)", colour_to)
    page.wait_for_function(
        "t => [...document.querySelectorAll('.js-plotly-plot .legendtext')]"
        ".some(e => e.textContent === t)", arg=legend, timeout=60_000)
    out["colour change"] = time.perf_counter() - start
    plot = page.locator(".js-plotly-plot .nsewdrag").first
    box = plot.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.wait_for_timeout(300)
    best = None
    for dx, dy in [(0, 0), (-60, -40), (60, 40), (-120, 60), (120, -60), (0, 100)]:
        start = time.perf_counter()
        page.mouse.move(cx + dx, cy + dy)
        try:
            page.wait_for_function(
                "document.querySelectorAll('.hoverlayer .hovertext').length > 0", timeout=3000)
            best = time.perf_counter() - start
            break
        except Exception:  # noqa: BLE001  no point under the cursor: try another spot
            continue
    out["hover label"] = best if best is not None else float("nan")
    before = page.evaluate(
        "document.querySelector('.js-plotly-plot')._fullLayout.xaxis.range.join()")
    page.mouse.move(cx - 80, cy - 60)
    page.mouse.down()
    page.mouse.move(cx + 80, cy + 60, steps=8)
    start = time.perf_counter()
    page.mouse.up()
    page.wait_for_function(
        "b => document.querySelector('.js-plotly-plot')._fullLayout.xaxis.range.join() !== b"
        " && new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))",
        arg=before, timeout=30_000)
    out["box zoom"] = time.perf_counter() - start
    page.mouse.dblclick(cx, cy)  # back to the full view
    return out


CHART = "document.querySelector('.insight-scatter')"


def colour_changes(page, columns: range) -> list[tuple[float, float, float, int, bool]]:
    """A colour change to each of `columns` (c1, c2, ...; none drawn before, so neither the
    server's panel cache nor the browser's message cache answers): (total, server, browser)
    seconds, the largest message's bytes, and whether the chart stayed mounted, for each."""
    out = []
    for i in columns:
        page.evaluate(f"{CHART}.__bench = true")
        page.evaluate("window.__ws = []")
        start = page.evaluate("performance.now()")
        fill(page, "Colour by (metadata column)", f"c{i}")
        page.wait_for_function(
            "t => [...document.querySelectorAll('.js-plotly-plot .legendtext')]"
            ".some(e => e.textContent === t)", arg=f"a{i}", timeout=60_000)
        end = page.evaluate("performance.now()")
        messages = page.evaluate("window.__ws")
        size = max((n for _, n in messages), default=0)
        arrived = next((t for t, n in messages if n == size), end)
        kept = page.evaluate(f"{CHART}.__bench === true")
        out.append(((end - start) / 1000, (arrived - start) / 1000, (end - arrived) / 1000, size,
                    kept))
    return out


def figure_json(vectors: Path, meta: Path, color: str) -> str:
    """The figure the app sends for these files (PCA, coloured by `color`), as plotly writes
    it for `st.plotly_chart`."""
    import plotly.io as pio

    from insight.figures.projector import projection_figure
    from insight.panels.projector import projected
    from insight.panels.registry import PanelContext

    ctx = PanelContext(vectors_path=vectors, metadata_path=meta)
    found, coords = projected(ctx, source="file", layer="", reduce="flatten", method="pca",
                              dims=2, seed=0, metric="euclidean", n_neighbors=15,
                              min_dist=0.1, perplexity=30.0)
    fig = projection_figure(coords, found.metadata, color=color, title=f"PCA of {found.name}")
    return pio.to_json(fig, validate=False)


_FRESH = """async ([k, j]) => { const host = document.getElementById('host');
  const t0 = performance.now(); host.innerHTML = '';
  const div = document.createElement('div'); host.appendChild(div);
  const f = JSON.parse(window.FIGS[k][j]);
  await Plotly.newPlot(div, f.data, f.layout, {displaylogo: false});
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return performance.now() - t0; }"""
_SAME = """async ([k, j]) => { const div = document.getElementById('host').firstChild;
  const t0 = performance.now(); const f = JSON.parse(window.FIGS[k][j]);
  await Plotly.react(div, f.data, f.layout, {displaylogo: false});
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return performance.now() - t0; }"""
_REDRAW = """async ([k, j]) => { const div = document.getElementById('host').firstChild;
  const t0 = performance.now();
  await Plotly.restyle(div, {'marker.opacity': j ? 0.7 : 0.75});
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return performance.now() - t0; }"""


def plotly_floor(browser, folder: Path, figures: dict[str, tuple[str, str]],
                 repeat: int) -> dict[str, tuple[float, float, float]]:
    """Median seconds of plotly.js alone switching between two colourings of each figure:
    (newPlot on a fresh div, react on the same div, a redraw of the same points)."""
    import plotly

    bundle = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    html = folder / "floor.html"
    html.write_text("<html><body><div id='host' style='width:1300px'></div>"
                    f"<script src='{bundle.as_uri()}'></script></body></html>")
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(html.as_uri())
    page.wait_for_function("window.Plotly !== undefined")
    page.evaluate("f => { window.FIGS = f; }", {k: list(v) for k, v in figures.items()})
    times: dict[str, tuple[list, list, list]] = {k: ([], [], []) for k in figures}
    for _ in range(repeat):  # interleaved, so that load on the machine hits all alike
        for k in figures:
            for j in (0, 1):
                times[k][0].append(page.evaluate(_FRESH, [k, j]) / 1000)
            for j in (1, 0):
                times[k][1].append(page.evaluate(_SAME, [k, j]) / 1000)
            for j in (1, 0):
                times[k][2].append(page.evaluate(_REDRAW, [k, j]) / 1000)
    page.close()
    return {k: tuple(statistics.median(t) for t in ts) for k, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-umap-baseline", action="store_true",
                        help="skip plain umap-learn's first call (a minute)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="colour changes to median over, each to a fresh column")
    args = parser.parse_args()
    if not 1 <= args.repeat <= EXTRA // 2:
        parser.error(f"--repeat takes 1 to {EXTRA // 2}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    folder = Path(tempfile.mkdtemp(prefix="insight-bench-"))
    small, big, meta = write_vectors(folder)
    rows = []
    notes: list[str] = []
    server = Server()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.add_init_script(WS_HOOK)
            page.goto(f"http://127.0.0.1:{server.port}/embeddings")
            wait_title(page, "all 1,797 points")
            warm = server.wait_warm()
            rows.append(("serve start to warm (TF, model, UMAP JIT)", warm, "", None, ""))
            choose(page, "Project", "A vectors file")
            fill(page, "Vectors (.npy or .tsv)", str(small))
            wait_title(page, "all 5,000 points")
            choose(page, "Method", "UMAP")
            start = time.perf_counter()
            click_project(page, umap=True)
            wait_title(page, "UMAP of")
            umap_first = time.perf_counter() - start
            base = first_call(5_000, ours=False) if not args.no_umap_baseline else None
            rows.append(("UMAP 5,000 x 64: click to figure, first after serve", umap_first,
                         "umap-learn first call, fresh process", base, "< 5 s"))
            # The same interactions on 100,000 points and on 5,000 (the baseline).
            choose(page, "Method", "PCA")
            click_project(page, umap=False)
            wait_title(page, "PCA of")
            fill(page, "Vectors (.npy or .tsv)", str(big))
            fill(page, "Metadata TSV (optional)", str(meta))
            start = time.perf_counter()
            wait_title(page, "all 100,000 points")
            rows.append(("100,000 points: first draw (PCA)", time.perf_counter() - start, "",
                         None, ""))
            big_ops = interactions(page, "group", "even")
            big_changes = colour_changes(page, range(1, args.repeat + 1))
            small_meta = folder / "small.tsv"
            pd.DataFrame({"label": np.arange(5_000) % 10,
                          "group": np.where(np.arange(5_000) % 2 == 0, "even", "odd"),
                          **extra_columns(5_000, 2)}).to_csv(small_meta, sep="\t", index=False)
            fill(page, "Vectors (.npy or .tsv)", str(small))
            fill(page, "Metadata TSV (optional)", str(small_meta))
            wait_title(page, "all 5,000 points")
            page.wait_for_timeout(500)
            small_ops = interactions(page, "label", "7")
            small_changes = colour_changes(page, range(args.repeat + 1, 2 * args.repeat + 1))
            for what in ("colour change", "hover label", "box zoom"):
                rows.append((f"100,000 points: {what}" + (" (first)" if what[0] == "c" else ""),
                             big_ops[what], "the same on 5,000 points", small_ops[what],
                             "< 1 s"))
            page.screenshot(path=str(folder / "projector.png"))
            for i, what in enumerate(("colour change", "  server: Enter to figure message",
                                      "  browser: message to legend drawn")):
                rows.append((f"100,000 points: {what}, median of {args.repeat}",
                             statistics.median(c[i] for c in big_changes),
                             "the same on 5,000 points",
                             statistics.median(c[i] for c in small_changes),
                             "< 1 s" if i == 0 else ""))
            figures = {"100k": (figure_json(big, meta, "c1"), figure_json(big, meta, "c2")),
                       "5k": (figure_json(small, small_meta, "c1"),
                              figure_json(small, small_meta, "c2"))}
            floor = plotly_floor(browser, folder, figures, args.repeat)
            rows.append(("plotly.js alone, fresh div (a remount), 100,000 points",
                         floor["100k"][0], "5,000 points", floor["5k"][0], ""))
            rows.append(("plotly.js alone, react on the drawn div, 100,000 points",
                         floor["100k"][1], "5,000 points", floor["5k"][1], ""))
            rows.append(("plotly.js alone, redraw of the same points, 100,000 points",
                         floor["100k"][2], "5,000 points", floor["5k"][2], ""))
            sizes = {k: len(v[0]) / 1e6 for k, v in figures.items()}
            notes = [f"figure JSON: {sizes['100k']:.2f} MB at 100,000 points, "
                     f"{sizes['5k']:.2f} MB at 5,000; largest websocket message per change: "
                     f"{statistics.median(c[3] for c in big_changes) / 1e6:.2f} MB / "
                     f"{statistics.median(c[3] for c in small_changes) / 1e6:.2f} MB",
                     "chart kept mounted through the colour changes: "
                     f"{sum(c[4] for c in big_changes + small_changes)} of "
                     f"{len(big_changes + small_changes)}",
                     "colour changes (total, server, browser s): 100k "
                     + json.dumps([[round(x, 2) for x in c[:3]] for c in big_changes])
                     + "; 5k " + json.dumps([[round(x, 2) for x in c[:3]] for c in small_changes])]
            browser.close()
    except Exception:
        page.screenshot(path=str(folder / "failed.png"), full_page=True)
        print(f"failed; screenshot in {folder / 'failed.png'}", file=sys.stderr)
        raise
    finally:
        stop(server.proc)
    print("| measure | insight | baseline | base | ratio | target |")
    print("|---|---:|---|---:|---:|---|")
    for name, ours, base_name, base, target in rows:
        ratio = f"{ours / base:.2f}" if base else ""
        base_s = f"{base:.2f} s" if base is not None else ""
        print(f"| {name} | {ours:.2f} s | {base_name} | {base_s} | {ratio} | {target} |")
    for line in notes:
        print(f"\n{line}")
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"(vectors and a screenshot in {folder})")


if __name__ == "__main__":
    main()
