"""Load: N browser sessions at once on one `insight serve`, against a single session.

One headless Chromium, one context (a Streamlit session) per user, all on the bundled
`digits_cnn` with its data and logdir. Every session walks the pages through the sidebar (a
rerun each) and, on Activations and Gradients, types a few example numbers of its own (each a
rerun that runs the model on an example no other session asked for, so the model is shared
but the work is not a cache hit). Reported:

- rerun latency (p50/p95): from the click or Enter to the `script_finished` message of the
  script run it started (Streamlit's protobuf `ForwardMsg`s read off the page's websocket:
  a `new_session` after the action, then its `script_finished`). The DOM's script-state
  attribute is no signal: a run served from the caches goes `running` and back within one
  React render, and the attribute never changes. Measured for N sessions and for one session
  doing the same in the same run;
- errors: `stException` elements, "Unexpected error" and error alerts on any page (0 expected);
- results: every attribution title's "explains class K" (the predicted class) against the
  model's own `predict` in this process, and every page's chart titles equal across sessions
  and the single session;
- server memory (VmRSS of the `insight serve` process): before the sessions, at peak, and
  after they leave; then the same sessions again: a second round that grows it again means
  something per session is kept.

Binds 127.0.0.1 only; a hard timeout (`--timeout`, default 900 s) kills the server and exits.

Usage: python benchmarks/bench_load.py [--sessions 20] [--changes 3] [--timeout 900]
Needs Chromium (/usr/bin/chromium or INSIGHT_BROWSER) and playwright (the test extra).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from unit._browser import start_server  # noqa: E402  (the tests' `insight serve`, shared)

CHROMIUM = os.environ.get("INSIGHT_BROWSER", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
        "--disable-backgrounding-occluded-windows"]  # 20 tabs in one browser: none paused
VIEWPORT = {"width": 1280, "height": 900}
WAIT_MS = 240_000  # one rerun under load, at most
# Page URL paths, in the sidebar's order (insight.ui.shell.PAGES; "" is Overview).
PAGES = ["", "doctor", "activations", "gradients", "embeddings", "training", "profiler",
         "compiler"]
EXAMPLE_PAGES = ("activations", "gradients")  # pages with an Example number input
N_EXAMPLES = 1797  # rows of digits_cnn's data.npz
# Pages whose chart titles say what was measured (times): not compared across sessions.
TIMED = ("profiler", "compiler")
RAMP = 0.25  # seconds between two sessions' arrivals: 20 arrive within 5 s

# Charts drawn (plotly's SVG in every chart), no skeleton left: what a user then sees.
DRAWN = """() => !document.querySelector('[data-testid=stSkeleton]') &&
  [...document.querySelectorAll('[data-testid=stPlotlyChart]')].every(
    c => c.querySelector('.main-svg'))"""
PROBLEMS = """() => {
  const out = [];
  for (const e of document.querySelectorAll('[data-testid=stException]'))
    out.push('exception: ' + e.innerText.slice(0, 300));
  for (const e of document.querySelectorAll('[data-testid=stAlertContentError]'))
    out.push('error: ' + e.innerText.slice(0, 300));
  if (document.body.innerText.includes('Unexpected error')) out.push('Unexpected error');
  return out;
}"""
TITLES = "() => [...document.querySelectorAll('.gtitle')].map(e => e.textContent)"


def rss_mb(pid: int) -> float:
    """Resident memory of one process, MB (`VmRSS` in /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Memory:
    """Samples a process's RSS every 0.2 s in a thread; `peak()` since the last `reset()`."""

    def __init__(self, pid: int) -> None:
        self.pid, self._peak, self._stop = pid, 0.0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._peak = max(self._peak, rss_mb(self.pid))

    def reset(self) -> None:
        self._peak = rss_mb(self.pid)

    def peak(self) -> float:
        return max(self._peak, rss_mb(self.pid))

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Session:
    """What one browser session saw."""

    latencies: dict[str, list[float]] = field(default_factory=dict)  # action kind -> ms
    problems: list[str] = field(default_factory=list)  # what the app showed as an error
    slow: list[str] = field(default_factory=list)  # what the browser did not finish in time
    titles: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    predicted: dict[int, str] = field(default_factory=dict)  # example -> "explains class K"


def examples_for(seed: int, session: int, changes: int) -> list[int]:
    """The example rows session `session` types: its own, so no two sessions share them."""
    return [(97 * seed + 7 * session + 1 + 331 * k) % N_EXAMPLES for k in range(changes)]


class Frames:
    """Arrival times of the script runs' first and last messages on a page's websocket."""

    def __init__(self, page) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self.events: list[tuple[str, float]] = []
        self.changed = asyncio.Event()
        early = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_EARLY_FOR_RERUN")

        def on_frame(payload) -> None:
            if isinstance(payload, str):
                return
            msg = ForwardMsg.FromString(payload)
            kind = msg.WhichOneof("type")
            if kind == "new_session" or (kind == "script_finished"
                                         and msg.script_finished != early):
                self.events.append((kind, time.perf_counter()))
                self.changed.set()

        page.on("websocket", lambda ws: ws.on("framereceived", on_frame))

    async def finished_after(self, t0: float) -> float:
        """Seconds from `t0` to the end of the first script run that started after it."""
        while True:
            started = next((i for i, (k, t) in enumerate(self.events)
                            if k == "new_session" and t >= t0), None)
            if started is not None:
                end = next((t for k, t in self.events[started:] if k == "script_finished"),
                           None)
                if end is not None:
                    return end - t0
            self.changed.clear()
            await self.changed.wait()


async def _act(page, frames: Frames, action, kind: str, out: Session, where: str,
               example: int = -1) -> None:
    t0 = time.perf_counter()
    await action()
    took = await asyncio.wait_for(frames.finished_after(t0), WAIT_MS / 1000)
    out.latencies.setdefault(kind, []).append(took * 1000)
    out.latencies.setdefault(f"{kind}:{where}", []).append(took * 1000)
    out.problems += [f"{where}: {p}" for p in await page.evaluate(PROBLEMS)]
    try:
        await page.wait_for_function(DRAWN, timeout=60_000, polling=50)
    except Exception:  # noqa: BLE001  a starved browser: its titles are not compared
        out.slow.append(f"{where}: charts not drawn 60 s after the script finished")
        return
    titles = await page.evaluate(TITLES)
    out.titles[(where, example)] = sorted(titles)
    for t in titles:
        if m := re.search(r"example (\d+) · (explains class \S+)", t):
            out.predicted[int(m.group(1))] = m.group(2)


async def user(browser, url: str, examples: list[int], pages: list[str],
               delay: float = 0, after_page=None) -> Session:
    """One session: open the app (after `delay` seconds), walk `pages` through the sidebar,
    type `examples` on the pages that have an Example input; back to Overview.
    `after_page(name)` is called once each page's script has finished (and its examples)."""
    out = Session()
    await asyncio.sleep(delay)
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        frames = Frames(page)
        await page.goto(url, timeout=WAIT_MS, wait_until="commit")  # 20 tabs load slowly
        await asyncio.wait_for(frames.finished_after(0), WAIT_MS / 1000)
        for where in [*[p for p in pages if p], ""]:  # it opens on Overview: back there last
            link = page.locator(f"[data-testid='stSidebarNavLink'][href='{url}/{where}']")
            await _act(page, frames, partial(link.click, timeout=WAIT_MS), "page", out,
                       where or "overview")
            if where not in EXAMPLE_PAGES:
                if after_page is not None:
                    after_page(where or "overview")
                continue
            box = page.get_by_test_id("stNumberInput").filter(has_text="Example").locator(
                "input")
            for n in examples:
                await box.fill(str(n), timeout=WAIT_MS)
                enter = partial(box.press, "Enter", timeout=WAIT_MS)
                await _act(page, frames, enter, "example", out, where, n)
            if after_page is not None:
                after_page(where or "overview")
    except Exception as exc:  # noqa: BLE001  a session that broke is a finding, not a crash
        out.slow.append(f"session failed: {type(exc).__name__}: {str(exc)[:2000]}")
        if os.environ.get("BENCH_LOAD_SHOTS"):
            await page.screenshot(path=f"{os.environ['BENCH_LOAD_SHOTS']}/failed_{id(out)}.png")
    finally:
        await context.close()
    return out


async def sessions(url: str, n: int, seed: int, changes: int,
                   pages: list[str]) -> list[Session]:
    """`n` sessions at once in one Chromium (contexts), each with its own examples."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            return list(await asyncio.gather(*[
                user(browser, url, examples_for(seed, s, changes), pages, RAMP * s)
                for s in range(n)]))
        finally:
            await browser.close()


def expected_classes() -> dict[int, str]:
    """Every example's predicted class as the attribution title says it, from the model's own
    `predict` in this process (no server, no threads)."""
    import numpy as np

    import insight
    from insight.model.samples import list_samples

    sample = next(s for s in list_samples() if s.name == "digits_cnn")
    data = np.load(sample.data)
    probs = insight.load_model(sample.model).model.predict(data["x"], verbose=0)
    names = [str(c) for c in data["class_names"]] if "class_names" in data else None
    return {i: f"explains class {names[k] if names else k}"
            for i, k in enumerate(probs.argmax(-1).tolist())}


def compare(runs: list[Session], expected: dict[int, str] | None) -> list[str]:
    """Disagreements: a predicted class unlike `predict`'s, a chart title that differs
    between sessions for the same page and example."""
    wrong = []
    if expected is not None:
        for s in runs:
            wrong += [f"example {i}: page says {got!r}, predict says {expected[i]!r}"
                      for i, got in s.predicted.items() if expected.get(i) != got]
    seen: dict[tuple[str, int], list[str]] = {}
    for s in runs:
        for key, titles in s.titles.items():
            if key[0] in TIMED:
                continue
            if seen.setdefault(key, titles) != titles:
                wrong.append(f"{key}: {titles} vs {seen[key]}")
    return wrong


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p95 (nearest rank) of `values`."""
    v = sorted(values)
    if not v:
        return float("nan"), float("nan")
    return statistics.median(v), v[min(len(v) - 1, max(0, round(0.95 * len(v)) - 1))]


def _latency_row(label: str, runs: list[Session], kind: str) -> tuple[str, int, float, float]:
    values = [ms for s in runs for ms in s.latencies.get(kind, [])]
    return (label, len(values), *percentiles(values))


def settle_rss(memory: Memory, seconds: float) -> float:
    """RSS after `seconds` of no sessions (the server's event loop and threads go quiet)."""
    time.sleep(seconds)
    return rss_mb(memory.pid)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--changes", type=int, default=3, help="examples typed per Example page")
    ap.add_argument("--timeout", type=float, default=1800, help="hard limit, seconds")
    ap.add_argument("--settle", type=float, default=10, help="seconds after sessions leave")
    ap.add_argument("--again", action="store_true",
                    help="run the same sessions a second time (memory: a leak per round)")
    args = ap.parse_args()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_load_{os.getpid()}.log"
    started = time.monotonic()
    server = start_server(log, timeout=120)
    url = server.url

    def hard_stop(*_):
        print(f"bench_load: hard timeout ({args.timeout:.0f} s): stopping", file=sys.stderr)
        server.proc.kill()
        os._exit(3)

    signal.signal(signal.SIGALRM, hard_stop)
    signal.alarm(int(args.timeout))
    memory = Memory(server.pid)
    try:
        expected = expected_classes()
        run = lambda n, seed: asyncio.run(sessions(url, n, seed, args.changes, PAGES))  # noqa: E731
        warm = run(1, 0)  # traces, the dataset, every page's first build: not measured
        single = run(1, 1)
        rss_before = settle_rss(memory, args.settle)
        memory.reset()
        t = time.monotonic()
        many = run(args.sessions, 2)
        wall_many = time.monotonic() - t
        peak = memory.peak()
        rss_after = settle_rss(memory, args.settle)
        memory.reset()
        again, peak2, rss_after2 = [], float("nan"), float("nan")
        if args.again:  # the same sessions again: a per-session leak grows
            again = run(args.sessions, 2)
            peak2 = memory.peak()
            rss_after2 = settle_rss(memory, args.settle)
    finally:
        memory.stop()
        server.stop()
        signal.alarm(0)

    everyone = [*warm, *single, *many, *again]
    problems = [p for s in everyone for p in s.problems]
    wrong = compare(everyone, expected)
    load = os.getloadavg()
    print(f"\nbench_load: {args.sessions} sessions x ({len(PAGES)} page visits + "
          f"{args.changes} examples on each of {', '.join(EXAMPLE_PAGES)}), one Chromium; "
          f"{wall_many:.0f} s for the {args.sessions} sessions; load average "
          f"{load[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"\n{'rerun':<34}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}{'p50 x':>8}{'p95 x':>8}")
    for kind, what in (("page", "page change (sidebar)"), ("example", "example typed")):
        base = _latency_row("", single, kind)
        for label, runs in ((f"{what}, 1 session", single),
                            (f"{what}, {args.sessions} sessions", many)):
            _, n, p50, p95 = _latency_row(label, runs, kind)
            print(f"{label:<34}{n:>5}{p50:>10.0f}{p95:>10.0f}{p50 / base[2]:>8.1f}"
                  f"{p95 / base[3]:>8.1f}")
    visited = [w or "overview" for w in [*PAGES[1:], ""]]
    print(f"\n{'p50 ms by page':<34}" + "".join(f"{w[:10]:>11}" for w in visited))
    for label, runs in (("page change, 1 session", single),
                        (f"page change, {args.sessions} sessions", many)):
        print(f"{label:<34}" + "".join(
            f"{_latency_row('', runs, f'page:{w}')[2]:>11.0f}" for w in visited))
    seen = sorted({i for s in everyone for i in s.predicted})
    print(f"\n{'check':<52}result")
    slow = [p for s in everyone for p in s.slow]
    failed = sum(p.startswith("session failed") for p in slow)
    print(f"{'errors shown (stException, Unexpected error, alerts)':<52}{len(problems)}")
    print(f"{'sessions that could not finish (browser timeouts)':<52}{failed}")
    print(f"{'pages whose charts the browser did not draw in 60 s':<52}{len(slow) - failed}")
    print(f"{'predicted classes checked against predict()':<52}{len(seen)} examples, "
          f"{sum('example' in w and 'predict' in w for w in wrong)} wrong")
    print(f"{'chart titles differing between sessions':<52}"
          f"{sum('predict' not in w for w in wrong)}")
    print(f"\n{'server RSS (MB)':<52}value")
    rows = [("before (after 1 warm-up + 1 single session)", rss_before),
            (f"peak, {args.sessions} sessions", peak),
            (f"{args.settle:.0f} s after they left", rss_after)]
    if args.again:
        rows += [(f"peak, the same {args.sessions} sessions again", peak2),
                 (f"{args.settle:.0f} s after they left again", rss_after2),
                 ("growth from the second round (a leak per round)", rss_after2 - rss_after)]
    for label, mb in rows:
        print(f"{label:<52}{mb:.0f}")
    print(f"\ntotal {time.monotonic() - started:.0f} s; server log {log}")
    for line in problems + wrong + slow[:10]:
        print("  !", line[:400])
    return 1 if problems or wrong or failed else 0


if __name__ == "__main__":
    sys.exit(main())
