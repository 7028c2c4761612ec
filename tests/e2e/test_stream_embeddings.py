"""`insight serve MODEL --data 'shards/*.tfrecord' --features spec.json --max-examples 3000` in
headless Chromium: the Embeddings page reads a layer's vectors from the stream past the
2,048 rows kept in memory, under a progress bar fed batch by batch, and projects all 3,000."""

from __future__ import annotations

import numpy as np
import pytest
from unit._browser import start_server

from insight.model.samples import get_sample

from .conftest import VIEWPORT, WATCH_PROGRESS, wait_for_app

pytestmark = pytest.mark.slow

SAMPLE = get_sample("digits_cnn")
ROWS, CAP = 4000, 3000  # the cap is past the 2,048 rows the app keeps in memory



@pytest.fixture(scope="module")
def server(chromium_path, tmp_path_factory):
    from insight.data.shards import write_shards

    tmp = tmp_path_factory.mktemp("stream-embeddings")
    data = np.load(SAMPLE.model.parent / "data.npz")
    reps = -(-ROWS // len(data["y"]))
    x, y = np.concatenate([data["x"]] * reps)[:ROWS], np.concatenate([data["y"]] * reps)[:ROWS]
    pattern, _ = write_shards(tmp / "shards", x, y, shards=4,
                              class_names=[str(c) for c in data["class_names"]])
    env = {"INSIGHT_CACHE_DIR": str(tmp / "cache"), "XDG_CACHE_HOME": str(tmp / "xdg")}
    try:
        srv = start_server(tmp / "serve.log", str(SAMPLE.model), "--data", pattern,
                           "--features", str(tmp / "shards" / "features.json"),
                           "--max-examples", str(CAP), env=env)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield srv
    srv.stop()


def test_embeddings_stream_a_layers_vectors_under_a_progress_bar(browser, server):
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.add_init_script(WATCH_PROGRESS)
    page.goto(f"{server.url}/embeddings")
    page.locator(".js-plotly-plot, [data-testid='stPlotlyChart'], iframe").first.wait_for(
        timeout=180_000)
    wait_for_app(page)
    seen = page.evaluate("window.__progress")
    vectors = [t for t in seen if t.startswith("Layer vectors of")]
    assert vectors, seen  # the bar's updates may come faster than the browser draws them
    # the rows in memory would stop at 2,048: these went on reading the stream
    assert vectors[-1].endswith(f"{CAP:,} of {CAP:,} examples"), vectors
    body = page.get_by_test_id("stMain").inner_text()
    assert "read from the stream batch by batch" in body, body[:2000]
    assert page.get_by_test_id("stException").count() == 0
    page.context.close()
