"""Server memory after one browser session visits every page of MobileNetV2 (96x96,
weights=None) with 2,048 inputs, and after that session is gone. No target yet (issue 15):
measured and reported.

One `insight serve MODEL --data DATA` (a free port on 127.0.0.1), one Chromium session
through `bench_load`'s user (every page in the sidebar's order, one example typed on each
page with an Example input, back to Overview; charts drawn before the next step). The
server's resident memory (`VmRSS`, sampled every 0.2 s) is read:

- before: the server up, no session yet;
- peak: while the session walks the pages;
- closed: the tab closed, 10 s later (Streamlit still holds the session);
- after TTL: once `server.disconnectedSessionTTL` has passed (Streamlit keeps a closed
  session that long in case its browser reconnects; the server here gets
  `STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL=--ttl`, 120 s by default as Streamlit's own),
  plus 10 s and a second session opening Overview only (so the server's loop runs its cleanup).

What stays after the TTL is shared by design (the model, its traces, the dataset, the panel
caches, each bounded by its `max_entries`), not the session's.

Usage: python benchmarks/bench_server_memory.py [--rows 2048] [--ttl 120] [--wait 600]
       [--timeout 1800]
Needs Chromium (/usr/bin/chromium or INSIGHT_BROWSER) and playwright (the test extra).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_load  # noqa: E402
from _curves_data import cache_root  # noqa: E402

SEED = 0


def mobilenet(rows: int) -> tuple[Path, Path]:
    """MobileNetV2 (96x96, weights=None) and `rows` random inputs in [0, 1), cached."""
    folder = cache_root() / f"mobilenetv2_96_{rows}"
    model_path, data_path = folder / "model.keras", folder / "data.npz"
    if not (model_path.is_file() and data_path.is_file()):
        import keras
        import numpy as np

        folder.mkdir(parents=True, exist_ok=True)
        keras.utils.set_random_seed(SEED)
        keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None).save(model_path)
        x = np.random.default_rng(SEED).random((rows, 96, 96, 3), dtype=np.float32)
        np.savez(data_path, x=x)
    return model_path, data_path


async def visit(url: str, pages: list[str], after_page=None) -> bench_load.Session:
    """One session walks `pages` (then its tab closes); `after_page(name)` after each."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=bench_load.CHROMIUM, headless=True,
                                          args=bench_load.ARGS)
        try:
            return await bench_load.user(browser, url, [7], pages, after_page=after_page)
        finally:
            await browser.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--ttl", type=int, default=120, help="disconnectedSessionTTL, seconds")
    ap.add_argument("--timeout", type=float, default=1800, help="hard limit, seconds")
    ap.add_argument("--wait", type=float, default=600,
                    help="seconds one page may take (bench_load's WAIT_MS)")
    args = ap.parse_args()
    bench_load.WAIT_MS = int(args.wait * 1000)  # MobileNetV2's first pages on 2 loaded cores
    model, data = mobilenet(args.rows)
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_server_memory_{os.getpid()}.log"
    server = bench_load.start_server(
        log, str(model), "--data", str(data), timeout=300,
        env={"STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(args.ttl)})

    def hard_stop(*_):
        print(f"bench_server_memory: hard timeout ({args.timeout:.0f} s): stopping",
              file=sys.stderr)
        server.proc.kill()
        os._exit(3)

    signal.signal(signal.SIGALRM, hard_stop)
    signal.alarm(int(args.timeout))
    memory = bench_load.Memory(server.pid)
    try:
        before = bench_load.settle_rss(memory, 5)
        memory.reset()
        start = time.monotonic()
        by_page: list[tuple[str, float, float]] = []  # page, RSS at its end, peak so far

        def after_page(name: str) -> None:
            by_page.append((name, bench_load.rss_mb(server.pid), memory.peak()))

        session = asyncio.run(visit(server.url, bench_load.PAGES, after_page))
        walk = time.monotonic() - start
        peak = memory.peak()
        closed = bench_load.settle_rss(memory, 10)
        time.sleep(max(0, args.ttl - 10))
        asyncio.run(visit(server.url, []))  # a new session: the server's loop runs again
        after_ttl = bench_load.settle_rss(memory, 10)
    finally:
        memory.stop()
        server.stop()
        signal.alarm(0)
    problems = session.problems + session.slow
    steps = {k.split(":", 1)[1]: v[0] / 1e3 for k, v in session.latencies.items() if ":" in k}
    print(f"\nbench_server_memory: MobileNetV2-96 (weights=None), {args.rows:,} inputs; one "
          f"session over {len(bench_load.PAGES)} pages in {walk:.0f} s; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"{'no problems' if not problems else f'{len(problems)} problem(s)'}\n")
    for p in problems[:10]:
        print(f"  {p[:300]}")
    print("Pages (script finished, s): " + ", ".join(f"{w} {t:.1f}" for w, t in steps.items())
          + "\n")
    print("| after page | RSS MB | vs before | peak so far MB |")
    print("|---|---:|---:|---:|")
    for name, mb, high in by_page:
        print(f"| {name} | {mb:,.0f} | {mb - before:+,.0f} | {high:,.0f} |")
    print()
    print("| server RSS | MB | vs before |")
    print("|---|---:|---:|")
    for label, mb in (("before (no session)", before), ("peak, walking every page", peak),
                      ("tab closed, 10 s later", closed),
                      (f"after the session TTL ({args.ttl} s) + 10 s", after_ttl)):
        print(f"| {label} | {mb:,.0f} | {mb - before:+,.0f} |")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
