"""The real app in the system Chromium: one `insight serve` per module on a free port.

Without a Chromium (`INSIGHT_BROWSER`, `BROWSER_PATH`, `/usr/bin/chromium`, PATH) these tests
skip with the reason; with `CI=true` they fail instead. Baselines live in
`__snapshots__/<platform>/`; a missing one is written and the test fails, so one run writes them
all (`INSIGHT_UPDATE_SNAPSHOTS=1` rewrites every baseline and passes).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import pytest
from unit._browser import require_browser, start_server  # `tests/` is on sys.path

SNAPSHOTS = Path(__file__).parent / "__snapshots__" / sys.platform
FAILURES = Path(os.environ.get("INSIGHT_SNAPSHOT_FAILURES", "snapshot-failures"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--font-render-hinting=none", "--force-color-profile=srgb"]
VIEWPORT = {"width": 1280, "height": 900}
# The Chromium that made the baselines: text rasterisation changes between major versions, so
# pixels are compared only with the same major version (the page checks always run).
VERSION_FILE = SNAPSHOTS / "chromium-version.txt"
BROWSER_VERSION = [""]


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    return require_browser()


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium_path), headless=True, args=ARGS)
        BROWSER_VERSION[0] = b.version
        yield b
        b.close()


@pytest.fixture(scope="module")
def app_url(chromium_path, tmp_path_factory):
    """`insight serve` on the bundled samples (digits_cnn first), until the module ends."""
    try:
        server = start_server(tmp_path_factory.mktemp("serve") / "serve.log",
                              env={"XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache"))})
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server.url
    server.stop()


def wait_for_app(page, timeout: float = 120_000) -> None:
    """Streamlit's own waits: connected, script finished, no skeleton left."""
    from playwright.sync_api import expect

    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(
        state="attached", timeout=timeout)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=timeout)
    page.wait_for_timeout(300)


def assert_snapshot(png: bytes, name: str, *, threshold: float = 0.1,
                    max_fraction: float = 0.002) -> None:
    """Compare with `__snapshots__/<platform>/<name>.png` (pixelmatch tolerance)."""
    from insight.export.snapshot import compare_png

    baseline = SNAPSHOTS / f"{name}.png"
    if os.environ.get("INSIGHT_UPDATE_SNAPSHOTS") == "1" or not baseline.is_file():
        baseline.parent.mkdir(parents=True, exist_ok=True)
        VERSION_FILE.write_text(BROWSER_VERSION[0] + "\n")
        existed = baseline.is_file()
        baseline.write_bytes(png)
        if not existed and os.environ.get("INSIGHT_UPDATE_SNAPSHOTS") != "1":
            pytest.fail(f"no baseline for {name}: wrote {baseline}; check it and commit it")
        return
    made_with = VERSION_FILE.read_text().strip() if VERSION_FILE.is_file() else ""
    if made_with.split(".")[0] != BROWSER_VERSION[0].split(".")[0]:
        warnings.warn(f"{name}: baselines were made with Chromium {made_with or '?'}, this is "
                      f"{BROWSER_VERSION[0]}: pixels not compared (INSIGHT_UPDATE_SNAPSHOTS=1 "
                      "rewrites them)", stacklevel=2)
        return
    result = compare_png(png, baseline.read_bytes(), threshold=threshold,
                         max_fraction=max_fraction)
    if not result.ok:
        folder = FAILURES / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "actual.png").write_bytes(png)
        (folder / "expected.png").write_bytes(baseline.read_bytes())
        if result.diff_png:
            (folder / "diff.png").write_bytes(result.diff_png)
        pytest.fail(f"{name}: {result.reason}; see {folder.resolve()}")


@pytest.fixture
def page(browser):
    """A page of its own browser context (no cookies or storage shared with other tests)."""
    context = browser.new_context(viewport=VIEWPORT)
    yield context.new_page()
    context.close()


def main_text(page) -> str:
    """The text of the app's main area (the sidebar left out)."""
    return page.get_by_test_id("stMain").inner_text()


# Every progress bar text the page draws, however briefly: a pass of a few hundred
# milliseconds can come and go between two of Playwright's polls. Add it as an init script;
# read `window.__progress`.
WATCH_PROGRESS = """
window.__progress = [];
new MutationObserver(() => {
  for (const bar of document.querySelectorAll("[data-testid='stProgress']")) {
    const text = bar.innerText.trim();
    if (text && window.__progress[window.__progress.length - 1] !== text)
      window.__progress.push(text);
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""
