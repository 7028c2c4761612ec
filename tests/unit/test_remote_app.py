"""The app on models, logdirs and runs in object storage, under AppTest against a real S3
endpoint (moto's server): the Overview names a fetched model by its URL (never the cache's
copy), storage errors are headed by what happened, a remote logdir reaches the panels as its
`s3://` URL, the Runs page reads a sweep from a bucket, and a deep link to a remote model
fetches it (the link carrying neither URL nor path)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from streamlit.testing.v1 import AppTest

from insight.curves.hparams import read_hparams
from insight.curves.remote import forget_listings
from insight.errors import StorageError
from insight.export.deeplink import share_url
from insight.launch import parse_app_args
from insight.model.samples import get_sample
from insight.remote.fetch import cache_root
from insight.ui.cache import ModelRef
from insight.ui.feedback import STORAGE_HEADLINES
from insight.ui.shell import PAGE_DIR
from insight.ui.sidebar import local_copy
from unit import _s3

SAMPLE = get_sample("digits_cnn")
SWEEP = SAMPLE.model.parent / "sweep"
MISSING = "s3://no-such-bucket-for-insight"
APP = Path(__file__).resolve().parents[2] / "app.py"  # the repo's; an install has none


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    import streamlit as st

    for var in ("INSIGHT_MODEL", "INSIGHT_DATA", "INSIGHT_LOGDIR", "INSIGHT_COMPARE"):
        monkeypatch.delenv(var, raising=False)
    forget_listings()
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    forget_listings()


@pytest.fixture
def remote_model(s3):
    """The sample's model in a fresh bucket and its local copy (as the sidebar fetches it)."""
    url = s3.upload(SAMPLE.model, f"s3://{s3.bucket()}/digits/model.keras")
    return url, local_copy(url)


def _header(ref):
    from insight.ui.widgets import file_header, require_preflight

    file_header(require_preflight(ref))


def test_overview_header_names_the_url_never_the_cache(remote_model):
    url, local = remote_model
    at = AppTest.from_function(_header, args=(ModelRef(local, True, None, url),),
                               default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "digits_cnn"
    caption = at.caption[0].value
    assert f"`{url}`" in caption, caption
    assert local not in caption and str(cache_root()) not in caption


def _show(url: str, endpoint: str | None) -> None:
    import os

    from insight.remote.fetch import fetch
    from insight.ui.feedback import show_error

    if endpoint:  # the test's environment, set again: AppTest runs in this process
        os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        fetch(url)
    except Exception as exc:  # noqa: BLE001 - shown, as the pages show it
        show_error(exc)


@pytest.mark.parametrize("reason", ["missing", "denied", "connection"])
def test_storage_errors_are_headed_by_what_happened(s3, remote_model, monkeypatch, reason):
    url, _ = remote_model
    endpoint = None
    if reason == "missing":
        url = f"{MISSING}/m.keras"
    elif reason == "connection":
        endpoint = "http://127.0.0.1:9"  # nothing listens there
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        _s3.clear_fs_cache()  # s3fs keeps the filesystem made for the working endpoint
    else:
        requests.post(f"{s3.endpoint}/moto-api/reset-auth", data="0", timeout=10)
    try:
        at = AppTest.from_function(_show, args=(url.replace(".keras", "-2.keras"), endpoint),
                                   default_timeout=60).run()
    finally:
        requests.post(f"{s3.endpoint}/moto-api/reset-auth", data="inf", timeout=10)
    assert not at.exception and len(at.error) == 1
    text = at.error[0].value
    assert text.startswith(f"**{STORAGE_HEADLINES[reason]}.**"), text
    assert "Cannot load the model" not in text and "Received:" in text


def test_every_reason_has_its_own_headline():
    from insight.ui.feedback import headline

    said = {r: headline(StorageError("x", reason=r)) for r in
            ("missing", "denied", "connection", "package", "other")}
    assert len(set(said.values())) == 5
    assert "install" in said["package"] and "credentials" in said["denied"]


def _context(ref):
    import streamlit as st

    from insight.ui.widgets import require_model

    ctx = require_model(ref)
    st.text(f"logdir={ctx.logdir}")
    st.text(f"data={ctx.data_path}")


def test_a_remote_logdir_and_data_reach_the_panels_as_urls(s3):
    logdir, data = f"s3://{s3.bucket()}/runs", f"s3://{s3.bucket()}/shards/*.tfrecord"
    at = AppTest.from_function(_context, args=(ModelRef(str(SAMPLE.model), True, None, "m"),),
                               default_timeout=120)
    at.session_state["insight_logdir"] = logdir
    at.session_state["insight_data"] = data
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [t.value for t in at.text] == [f"logdir={logdir}", f"data={data}"]


def _runs(at_logdir: str) -> AppTest:
    at = AppTest.from_file(str(PAGE_DIR / "runs.py"), default_timeout=120)
    at.session_state["insight_ref"] = None
    at.session_state["insight_logdir"] = at_logdir
    return at.run()


def test_runs_page_reads_a_sweep_in_a_bucket(s3):
    url = s3.upload(SWEEP, f"s3://{s3.bucket()}/sweep")
    remote, local = read_hparams(url), read_hparams(SWEEP)
    assert remote.hparams == local.hparams and remote.metrics == local.metrics
    assert remote.table.drop(columns="source").equals(local.table.drop(columns="source"))

    at = _runs(url)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.caption[0].value == f"`{url}`"  # the URL whole, no `s3:/` from a Path
    table = at.dataframe[0].value
    assert sorted(table.run) == ["run-1", "run-2", "run-3", "run-4"]
    at.text_input(key="runs_filter").set_value("optimizer=sgd").run()
    assert list(at.dataframe[0].value.run) == ["run-4"]


def test_runs_page_says_a_missing_bucket(s3):
    at = _runs(f"{MISSING}/sweep")
    assert not at.exception and len(at.error) == 1
    text = at.error[0].value
    assert text.startswith("**Cannot read the logdir.**") and "does not exist" in text, text


def test_a_deep_link_to_a_remote_model_fetches_it(remote_model, monkeypatch):
    url, local = remote_model
    monkeypatch.setenv("INSIGHT_MODEL", url)
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params["embed"] = "true"
    at.query_params["panel"] = "layer_table"
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "conv1" in set(at.dataframe[0].value["layer"])

    # The share control of the served model's page links it without a URL or path.
    from insight.ui.share import link_model_name

    assert link_model_name(ModelRef(local, True, None, url), parse_app_args([])) == (True, None)
    link = share_url("http://127.0.0.1:8501/", "layer_table", {}, None)
    assert "s3" not in link and "model=" not in link

    # A link naming a bucket URL itself is refused before anything is read.
    other = url.replace("model.keras", "other.keras")
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params.update({"embed": "true", "panel": "layer_table", "model": other})
    at.run()
    assert not at.exception and len(at.error) == 1
    assert "No model named" in at.error[0].value and not at.dataframe


def test_a_deep_link_to_a_missing_remote_model_says_so(s3, monkeypatch):
    monkeypatch.setenv("INSIGHT_MODEL", f"{MISSING}/m.keras")
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params["embed"] = "true"
    at.query_params["panel"] = "layer_table"
    at.run()
    assert not at.exception and len(at.error) == 1
    assert at.error[0].value.startswith("**Cannot fetch the model.**")
