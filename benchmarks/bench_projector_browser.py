"""The Embeddings page in headless Chromium, driven like a user.

Rows (one run, `insight serve` on the bundled digits_cnn, vectors files written to a temp dir):
- warm-up: seconds from `insight serve` starting to its "insight: warm" line (TensorFlow,
  the model, UMAP's numba functions compiled).
- first UMAP after serve: UMAP of a 5,000 x 64 vectors file, from the "Project" click to
  the UMAP figure drawn; baseline: plain umap-learn's first call in a fresh process.
- 100,000 points: first draw (PCA), colour change, hover label, box zoom; baseline: the same
  interaction on the 1,797-point digits layer projection in the same browser and server.

Needs Chromium (/usr/bin/chromium or INSIGHT_BROWSER) and playwright (the test extra).
Usage: python benchmarks/bench_projector_browser.py [--no-umap-baseline]
"""

from __future__ import annotations

import argparse
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
                  "score": rng.random(100_000).round(3)}).to_csv(meta, sep="\t", index=False)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-umap-baseline", action="store_true",
                        help="skip plain umap-learn's first call (a minute)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="insight-bench-"))
    small, big, meta = write_vectors(folder)
    rows = []
    server = Server()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(f"http://127.0.0.1:{server.port}/embeddings")
            wait_title(page, "all 1,797 points")
            warm = server.wait_warm()
            rows.append(("serve start to warm (TF, model, UMAP JIT)", warm, "", None, ""))
            choose(page, "Project", "A vectors file")
            fill(page, "Vectors (.npy or .tsv)", str(small))
            wait_title(page, "all 5,000 points")
            choose(page, "Method", "UMAP")
            start = time.perf_counter()
            page.get_by_role("button", name="Project").click()
            wait_title(page, "UMAP of")
            umap_first = time.perf_counter() - start
            base = first_call(5_000, ours=False) if not args.no_umap_baseline else None
            rows.append(("UMAP 5,000 x 64: click to figure, first after serve", umap_first,
                         "umap-learn first call, fresh process", base, "< 5 s"))
            # The same interactions on 100,000 points and on 5,000 (the baseline).
            choose(page, "Method", "PCA")
            page.get_by_role("button", name="Project").click()
            wait_title(page, "PCA of")
            fill(page, "Vectors (.npy or .tsv)", str(big))
            fill(page, "Metadata TSV (optional)", str(meta))
            start = time.perf_counter()
            wait_title(page, "all 100,000 points")
            rows.append(("100,000 points: first draw (PCA)", time.perf_counter() - start, "",
                         None, ""))
            big_ops = interactions(page, "group", "even")
            small_meta = folder / "small.tsv"
            pd.DataFrame({"label": np.arange(5_000) % 10,
                          "group": np.where(np.arange(5_000) % 2 == 0, "even", "odd")}
                         ).to_csv(small_meta, sep="\t", index=False)
            fill(page, "Vectors (.npy or .tsv)", str(small))
            fill(page, "Metadata TSV (optional)", str(small_meta))
            wait_title(page, "all 5,000 points")
            page.wait_for_timeout(500)
            small_ops = interactions(page, "label", "7")
            for what in ("colour change", "hover label", "box zoom"):
                rows.append((f"100,000 points: {what}", big_ops[what],
                             "the same on 5,000 points", small_ops[what], "< 1 s"))
            page.screenshot(path=str(folder / "projector.png"))
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
    print(f"\n(vectors and a screenshot in {folder})")


if __name__ == "__main__":
    main()
