"""`insight serve s3://.../model.keras --logdir s3://.../sweep --data 's3://.../*.tfrecord'
--features spec.json` in headless Chromium, against a real S3 endpoint (moto's server): the
Overview names the model by its URL, the Activations page shows a progress bar while the
shards stream through the statistics pass, the Share link of the remote model (no URL, no
path in it) opens the panel alone, and the Runs page reads the sweep from the bucket."""

from __future__ import annotations

import numpy as np
import pytest
from unit._browser import start_server

from insight.model.samples import get_sample

from .conftest import WATCH_PROGRESS, main_text, wait_for_app

pytestmark = pytest.mark.slow

SAMPLE = get_sample("digits_cnn")
ROWS = 4000  # more than the 2,048 the page keeps in memory: the statistics read the stream


def _shards(folder):
    from insight.data.shards import write_shards

    data = np.load(SAMPLE.model.parent / "data.npz")
    reps = -(-ROWS // len(data["y"]))
    x, y = np.concatenate([data["x"]] * reps)[:ROWS], np.concatenate([data["y"]] * reps)[:ROWS]
    write_shards(folder, x, y, shards=4, class_names=[str(c) for c in data["class_names"]])
    return folder / "features.json"


@pytest.fixture(scope="module")
def remote(chromium_path, _s3_server, tmp_path_factory):
    s3, tmp = _s3_server, tmp_path_factory.mktemp("remote-app")
    base = f"s3://{s3.bucket()}/digits"
    model = s3.upload(SAMPLE.model, f"{base}/model.keras")
    sweep = s3.upload(SAMPLE.model.parent / "sweep", f"{base}/sweep")
    spec = _shards(tmp / "shards")
    for shard in sorted((tmp / "shards").glob("*.tfrecord")):
        s3.upload(shard, f"{base}/shards/{shard.name}")
    cache = tmp_path_factory.mktemp("insight-cache")
    env = {**s3.env, "INSIGHT_CACHE_DIR": str(cache),
           "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("xdg"))}
    try:
        server = start_server(tmp / "serve.log", model, "--logdir", sweep, "--data",
                              f"{base}/shards/*.tfrecord", "--features", str(spec), env=env)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server, base, cache
    server.stop()


def test_overview_names_the_url_and_its_link_opens_the_panel(page, remote):
    server, base, cache = remote
    page.goto(server.url)
    wait_for_app(page)
    page.get_by_text("Parameters").first.wait_for(timeout=120_000)
    wait_for_app(page)
    caption = page.get_by_test_id("stCaptionContainer").first.inner_text()
    assert f"{base}/model.keras" in caption and str(cache) not in caption, caption
    assert str(cache) not in main_text(page)

    page.locator("[data-testid='stPopoverButton']:visible").first.click()
    link = page.get_by_test_id("stPopoverBody").locator("code").first.inner_text()
    assert link.startswith(f"{server.url}/?embed=true&panel="), link
    assert "s3" not in link and "model=" not in link and "/" not in link.split("?", 1)[1]
    page.goto(link)
    wait_for_app(page)
    page.locator(".js-plotly-plot, [data-testid='stDataFrame']").first.wait_for(
        timeout=120_000)
    assert page.get_by_test_id("stSidebar").count() == 0
    assert page.get_by_test_id("stAlert").count() == 0, main_text(page)[:1000]




def test_activations_show_progress_while_the_shards_stream(page, remote):
    server, base, _ = remote
    page.add_init_script(WATCH_PROGRESS)
    page.goto(f"{server.url}/activations")
    page.get_by_test_id("stDataFrame").first.wait_for(timeout=180_000)
    wait_for_app(page)
    seen = page.evaluate("window.__progress")
    stats = [t for t in seen if t.startswith("Activation statistics:")]
    assert stats, seen
    assert stats[-1].endswith("of 2,048 examples"), stats  # fed batch by batch to the end
    assert page.get_by_test_id("stProgress").count() == 0  # removed once the pass is done
    body = main_text(page)
    assert "streamed" in body and "Statistics over 2,048 examples" in body, body[:1500]
    assert page.get_by_test_id("stException").count() == 0


def test_runs_page_reads_the_sweep_in_the_bucket(page, remote):
    server, base, _ = remote
    page.goto(f"{server.url}/runs")
    wait_for_app(page)
    page.get_by_test_id("stDataFrame").first.wait_for(timeout=120_000)
    wait_for_app(page)
    body = main_text(page)
    assert f"{base}/sweep" in body and f"s3:/{base[5:]}" not in body  # not folded by a Path
    plot = page.locator(".js-plotly-plot").first
    plot.wait_for(timeout=60_000)
    assert plot.evaluate("e => e.data[0].type") == "parcoords"
    assert plot.evaluate("e => e._fullData[0]._length") == 4  # one line per run
    assert page.get_by_test_id("stAlert").count() == 0, body[:1500]
