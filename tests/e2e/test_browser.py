"""Every page of the real app on digits_cnn in Chromium: no exception, one element screenshot
per page against its baseline, and a deep-linked panel inside an iframe on another origin."""

from __future__ import annotations

import contextlib
import functools
import html
import http.server
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from unit._browser import free_port

from insight.ui.shell import PAGES

from .conftest import VIEWPORT, assert_snapshot, wait_for_app

pytestmark = pytest.mark.slow


def _path(file: str, n: int) -> str:
    return "" if n == 0 else Path(file).stem


@pytest.fixture(scope="module")
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    yield page
    context.close()


@pytest.mark.parametrize(("n", "file", "title"), [(n, f, t) for n, (f, t, _) in
                                                   enumerate(PAGES)], ids=[t for _, t, _ in PAGES])
def test_page_loads_and_matches_baseline(page, app_url, n, file, title):
    page.goto(f"{app_url}/{_path(file, n)}")
    wait_for_app(page)
    assert page.get_by_test_id("stException").count() == 0, title
    errors = page.get_by_test_id("stAlertContentError")
    assert errors.count() == 0, [errors.nth(i).inner_text() for i in range(errors.count())]
    # The Embeddings scatter is a component of its own (insight.ui.scatter_component).
    chart = page.locator("[data-testid='stPlotlyChart'], .insight-scatter").first
    if chart.count():
        chart.locator(".main-svg").first.wait_for(state="visible")
        target = chart
    else:
        target = page.locator("h1").first
    page.mouse.move(0, 0)
    page.wait_for_timeout(200)
    assert_snapshot(target.screenshot(animations="disabled"), f"page_{Path(file).stem}")


@contextlib.contextmanager
def _wiki(browser, tmp_path, link: str):
    """A wiki page on another origin (its own HTTP server) with `link` in an iframe; yields
    the browser page and the iframe's frame, the chart in it drawn."""
    (tmp_path / "wiki.html").write_text(
        f"<!DOCTYPE html><html><body style='margin:0'><h1>Team wiki</h1><iframe src='{link}' "
        f"width='900' height='560' style='border:0'></iframe></body></html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/wiki.html")
        frame = page.frame_locator("iframe")
        frame.locator(".js-plotly-plot .main-svg").first.wait_for(state="visible",
                                                                  timeout=60_000)
        yield page, frame
    finally:
        context.close()
        server.shutdown()


def test_deep_link_in_an_iframe_on_another_origin(browser, app_url, tmp_path):
    with _wiki(browser, tmp_path, f"{app_url}/?embed=true&panel=param_chart") as (page, frame):
        assert frame.get_by_test_id("stSidebar").count() == 0
        assert frame.get_by_test_id("stPopover").count() == 0  # no share control inside
        assert frame.locator("[data-testid='stPlotlyChart']").count() == 1
        title = frame.locator(".gtitle").first.text_content()
        assert title.startswith("Parameters per layer")
        page.mouse.move(0, 0)
        page.wait_for_timeout(300)
        assert_snapshot(page.locator("iframe").screenshot(animations="disabled"),
                        "iframe_param_chart")


def test_plain_page_link_draws_the_figure_without_streamlit(browser, app_url, tmp_path):
    """`/_insight/panel?...`: the same link as a plain page (the exported HTML, built by the
    server), in a wiki's iframe on another origin; plotly.js one cached file."""
    link = f"{app_url}/_insight/panel?panel=param_chart&model=digits_cnn"
    with _wiki(browser, tmp_path, link) as (_, frame):
        assert frame.locator("[data-testid='stApp']").count() == 0  # no Streamlit at all
        assert frame.locator(".gtitle").first.text_content().startswith("Parameters per layer")
    with urllib.request.urlopen(f"{app_url}/_insight/plotly.min.js", timeout=30) as response:
        assert "max-age" in response.headers["Cache-Control"]
        assert response.read(200).lstrip().startswith(b"/**")
    with urllib.request.urlopen(f"{app_url}/_insight/panel?panel=layer_table",
                                timeout=60) as response:
        assert "<table" in response.read().decode()  # a table panel is a plain table


@pytest.mark.parametrize(("query", "said"), [
    ("panel=projection&method=bogus", "must be one of pca, umap, tsne"),
    ("panel=param_chart&data=/etc/passwd", "cannot name files or trust flags"),
    ("panel=param_chart&model=nobody", "No model named 'nobody'"),
])
def test_plain_page_link_refuses_a_bad_link_in_words(app_url, query, said):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{app_url}/_insight/panel?{query}", timeout=60)
    text = html.unescape(caught.value.read().decode())
    assert caught.value.code == 400 and said in text and "Received:" in text
    assert "/etc/passwd" not in text.split("Received:")[0]  # named only as what was received


def test_bad_deep_link_lists_the_valid_values(page, app_url):
    page.goto(f"{app_url}/?embed=true&panel=projection&method=bogus")
    wait_for_app(page)
    text = page.get_by_test_id("stAlertContentError").inner_text()
    assert "must be one of pca, umap, tsne" in text and "method='bogus'" in text


def test_share_popover_downloads_html_and_png(page, app_url, tmp_path):
    page.goto(f"{app_url}/")
    wait_for_app(page)
    page.locator("[data-testid='stPopoverButton']:visible").first.click()
    popover = page.get_by_test_id("stPopoverBody")
    link = popover.locator("code").first.inner_text()
    assert link.startswith(f"{app_url}/?embed=true&panel=") and "model=digits_cnn" in link
    codes = popover.locator("code").all_inner_texts()
    assert any(c.startswith(f"{app_url}/_insight/panel?panel=") for c in codes), codes
    with page.expect_download(timeout=60_000) as html:
        popover.get_by_role("button", name="HTML").click()
    text = Path(html.value.path()).read_text()
    assert html.value.suggested_filename.endswith(".html") and "<table" in text
    with page.expect_download(timeout=60_000) as png:
        popover.get_by_role("button", name="PNG").click()
    assert Path(png.value.path()).read_bytes()[:4] == b"\x89PNG"
