"""`insight serve s3://.../model.keras --logdir s3://...` in headless Chromium, against a real
S3 endpoint (moto's server, behind a proxy that can drop connections): Overview, Profiler and
Embeddings read the bucket; a missing bucket, refused credentials, a dropped connection and a
Lambda model each end in their error text in the page, which keeps working, and the cache
keeps nothing half-written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import requests
from unit._browser import start_server
from unit._drop import DropProxy

from insight.model.samples import get_sample

from .conftest import main_text, wait_for_app

pytestmark = pytest.mark.slow

SAMPLE = get_sample("digits_cnn")
MISSING = "s3://no-such-bucket-for-insight/m/model.keras"


def _projector_files(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.savetxt(folder / "vectors.tsv", np.random.default_rng(0).normal(size=(60, 6)),
               delimiter="\t")
    (folder / "metadata.tsv").write_text("\n".join(f"c{i % 3}" for i in range(60)) + "\n")
    (folder / "projector_config.pbtxt").write_text(
        'embeddings { tensor_name: "remote_words" tensor_path: "vectors.tsv" '
        'metadata_path: "metadata.tsv" }\n')
    return folder


def _lambda_model(path: Path) -> Path:
    import keras

    x = keras.Input((3,), name="x")
    keras.Model(x, keras.layers.Lambda(lambda v: v * 2, name="double")(x), name="lam").save(path)
    return path


def _big_model(path: Path) -> Path:
    """A real model of 2 MB: its download is cut by the proxy once armed."""
    import keras

    keras.Sequential([keras.Input((512,)), keras.layers.Dense(1024)], name="big").save(path)
    return path


@pytest.fixture(scope="module")
def remote(chromium_path, _s3_server, tmp_path_factory):
    """The sample's model, logdir (with its profile) and a projector config in a bucket, a
    Lambda model and a large model beside them; the app serving them through a proxy."""
    s3, tmp = _s3_server, tmp_path_factory.mktemp("remote")
    bucket = s3.bucket()
    base = f"s3://{bucket}/digits"
    model = s3.upload(SAMPLE.model, f"{base}/model.keras")
    logdir = s3.upload(SAMPLE.logdir, f"{base}/logs")
    s3.upload(_projector_files(tmp / "proj"), logdir)
    s3.upload(_lambda_model(tmp / "lambda.keras"), f"{base}/lambda.keras")
    s3.upload(SAMPLE.model, f"{base}/copy.keras")
    s3.upload(_big_model(tmp / "big.keras"), f"{base}/big.keras")
    proxy = DropProxy(s3.endpoint)
    cache = tmp_path_factory.mktemp("insight-cache")
    env = {**s3.env, "AWS_ENDPOINT_URL": proxy.endpoint, "INSIGHT_CACHE_DIR": str(cache),
           "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("xdg"))}
    try:
        server = start_server(tmp / "serve.log", model, "--logdir", logdir, env=env)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server, base, proxy, cache, s3
    server.stop()
    proxy.close()


def test_overview_of_a_remote_model(page, remote):
    server, base, *_ = remote
    page.goto(server.url)
    wait_for_app(page)
    page.get_by_text("Parameters").first.wait_for(timeout=120_000)
    assert page.locator("h1").first.inner_text() == "digits_cnn"
    model_box = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first
    assert f"{base}/model.keras (command line)" in model_box.inner_html()  # named by its URL
    assert "No Lambda layers" in main_text(page) and "3,658" in main_text(page)


def test_profiler_reads_the_remote_profile_and_captures_locally(page, remote):
    server, *_ = remote
    page.goto(f"{server.url}/profiler")
    wait_for_app(page)
    page.get_by_text("Step-time breakdown").wait_for(timeout=120_000)
    wait_for_app(page)
    body = main_text(page)
    picker = page.get_by_test_id("stMain").get_by_test_id("stSelectbox").first.inner_html()
    assert "train/2026_11_26_19_12_21 (remote logdir)" in picker
    assert "Steps (inferred)" in body, body[:2000]
    assert "never writes to a bucket" in body
    assert page.get_by_test_id("stException").count() == 0


def test_embeddings_projects_the_remote_projector_config(page, remote):
    server, *_ = remote
    page.goto(f"{server.url}/embeddings")
    wait_for_app(page)
    page.get_by_label("Project").click()
    page.get_by_role("option", name="The logdir's projector config").click()
    page.get_by_text("remote_words").first.wait_for(timeout=120_000)
    wait_for_app(page)
    assert page.get_by_test_id("stException").count() == 0


def _open(page, url: str) -> None:
    """Type `url` as the sidebar's other model and wait for the page to settle."""
    field = page.get_by_role("textbox", name="Model path")
    field.fill(url)
    field.press("Enter")
    page.wait_for_timeout(500)
    wait_for_app(page)


def test_failures_are_said_in_the_page_which_keeps_working(page, remote):
    server, base, proxy, cache, s3 = remote
    page.goto(server.url)
    wait_for_app(page)
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="Another file…").click()
    wait_for_app(page)

    _open(page, MISSING)
    alert = page.get_by_test_id("stAlert").filter(has_text="Cannot fetch the model").inner_text()
    assert "does not exist" in alert and "no-such-bucket-for-insight" in alert

    _open(page, f"{base}/lambda.keras")
    refusal = page.get_by_test_id("stAlert").filter(has_text="Refused in safe mode")
    refusal.wait_for(timeout=120_000)
    assert f"{base}/lambda.keras" in refusal.inner_text()  # the URL, not the cache's copy
    assert str(cache) not in refusal.inner_text() and "Lambda" in refusal.inner_text()

    requests.post(f"{s3.endpoint}/moto-api/reset-auth", data="0", timeout=10)
    try:
        _open(page, f"{base}/copy.keras")
        assert "refused these credentials" in main_text(page), main_text(page)[:1500]
    finally:
        requests.post(f"{s3.endpoint}/moto-api/reset-auth", data="inf", timeout=10)

    proxy.armed = True
    try:
        _open(page, f"{base}/big.keras")
        assert "dropped" in main_text(page), main_text(page)[:1500]
    finally:
        proxy.armed = False
    assert proxy.dropped
    kept = [p.relative_to(cache / "remote") for p in (cache / "remote").rglob("*")
            if p.is_file()]
    assert kept and not [p for p in kept if p.name == "big.keras" or p.parts[0] == "tmp"], \
        kept  # nothing half-written: no blob of the dropped file, no temporary left
    assert "Traceback" not in main_text(page) and page.get_by_test_id("stException").count() == 0

    _open(page, "")  # the field's value changes, so the same URL below is read again
    _open(page, f"{base}/big.keras")  # the connection is back: the same file now opens
    page.get_by_text("Parameters").first.wait_for(timeout=120_000)
    assert page.locator("h1").first.inner_text() == "big"
