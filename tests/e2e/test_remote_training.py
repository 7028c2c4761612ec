"""`insight serve MODEL --logdir s3://...` in headless Chromium, against a real S3 endpoint
(moto's server): the Training page draws the curves read from the bucket, and a logdir in a
bucket that does not exist shows the StorageError in the page, which keeps working."""

from __future__ import annotations

import pytest
from unit._browser import start_server

from insight.model.samples import get_sample

from .conftest import VIEWPORT, wait_for_app

pytestmark = pytest.mark.slow

SAMPLE = get_sample("digits_cnn")
MISSING = "s3://no-such-bucket-for-insight/runs"


@pytest.fixture(scope="module")
def remote(chromium_path, _s3_server, tmp_path_factory):
    """The sample's logdir in a fresh bucket, and the app serving it from there."""
    bucket = _s3_server.bucket()
    url = _s3_server.upload(SAMPLE.logdir, f"s3://{bucket}/runs")
    env = {**_s3_server.env, "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache")),
           "INSIGHT_CACHE_DIR": str(tmp_path_factory.mktemp("insight-cache"))}
    try:
        server = start_server(tmp_path_factory.mktemp("serve") / "serve.log",
                              str(SAMPLE.model), "--logdir", url, env=env)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server, url
    server.stop()


def _charts(page) -> list[str]:
    """The titles of the plotly charts drawn in the page."""
    return page.eval_on_selector_all(
        ".js-plotly-plot", "els => els.map(e => (e.layout && e.layout.title && "
        "e.layout.title.text) || '')")


def test_training_page_reads_the_bucket_and_reports_a_missing_one(browser, remote):
    server, url = remote
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/training")
        wait_for_app(page)
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        titles = [t.split("<br>")[0] for t in _charts(page)]
        assert {"epoch_loss", "epoch_accuracy"} <= set(titles), titles
        body = page.get_by_test_id("stMain").inner_text()
        assert url in body and "70 points" in body, body[:2000]

        field = page.get_by_role("textbox", name="Logdir")
        field.fill(MISSING)
        field.press("Enter")
        alert = page.get_by_test_id("stMain").get_by_text("does not exist", exact=False)
        alert.first.wait_for(timeout=60_000)
        wait_for_app(page)
        body = page.get_by_test_id("stMain").inner_text()
        assert "no-such-bucket-for-insight" in body and "Traceback" not in body
        assert page.get_by_test_id("stException").count() == 0

        field.fill(url)  # the app keeps working: back to the bucket that exists
        field.press("Enter")
        page.get_by_test_id("stMain").get_by_text("70 points", exact=False).first.wait_for(
            timeout=60_000)
        wait_for_app(page)
        assert {"epoch_loss", "epoch_accuracy"} <= {t.split("<br>")[0] for t in _charts(page)}
    finally:
        context.close()
