"""The Embeddings page's scatter in Chromium: a colour change redraws the chart in place (the
same div, only the new colouring sent), and a clicked point comes back to Python."""

from __future__ import annotations

import re

import pytest

from .conftest import VIEWPORT, wait_for_app

pytestmark = pytest.mark.slow
CHART = ".insight-scatter"


def _message(page) -> str:
    return page.evaluate(f"document.querySelector('{CHART}').dataset.message")


def _legend(page) -> list[str]:
    return page.locator(f"{CHART} .legendtext").all_text_contents()


def test_colour_change_redraws_in_place_and_a_click_selects_the_point(browser, app_url):
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    sizes: list[int] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: sizes.append(
        len(f) if isinstance(f, bytes | str) else 0)))
    try:
        page.goto(f"{app_url}/embeddings")
        wait_for_app(page)
        page.locator(f"{CHART} .main-svg").first.wait_for(state="visible", timeout=120_000)
        assert _legend(page) == [str(i) for i in range(10)]  # coloured by label
        page.evaluate(f"document.querySelector('{CHART}').__kept = true")
        before = _message(page)
        sizes.clear()
        page.get_by_label("Colour by").click()
        page.get_by_role("option", name="correct", exact=True).click()
        page.wait_for_function(
            f"m => document.querySelector('{CHART}').dataset.message !== m", arg=before,
            timeout=60_000)
        assert sorted(_legend(page)) == ["False", "True"]
        assert page.evaluate(f"document.querySelector('{CHART}').__kept === true"), \
            "the chart was mounted again"
        # 1,797 points: the new split is a byte per point, not the coordinates again
        # (2 x 8 bytes per point) nor the hover text.
        assert max(sizes) < 12_000, sizes

        # Click the first point of the first trace, where it is drawn.
        x, y = page.evaluate(f"""() => {{
            const div = document.querySelector('{CHART}'), size = div._fullLayout._size;
            const trace = div._fullData[0], box = div.getBoundingClientRect();
            const i = trace.x.length >> 1;
            return [box.left + size.l + div._fullLayout.xaxis.l2p(trace.x[i]),
                    box.top + size.t + div._fullLayout.yaxis.l2p(trace.y[i]),
                   ]; }}""")
        page.mouse.move(x, y)
        hover = page.locator(".hoverlayer .hovertext").first
        hover.wait_for(timeout=10_000)
        shown = int(re.search(r"point (\d+)", hover.text_content()).group(1))
        page.mouse.click(x, y)
        title = page.get_by_text("Nearest neighbours of point")
        title.wait_for(timeout=60_000)
        assert title.inner_text() == f"Nearest neighbours of point {shown}"
        assert page.evaluate(f"document.querySelector('{CHART}').__kept === true")
        page.locator(f"{CHART} .legendtext", has_text="selected + neighbours").wait_for()
    finally:
        context.close()
