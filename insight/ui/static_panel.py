"""`/_insight/panel?panel=NAME&k=v...`: one panel as a plain HTML page, for wiki iframes.

The deep link `/?embed=true&panel=NAME` opens a Streamlit session: the app boots in the
browser, the script runs, and a figure is drawn only once its element arrives, after
Streamlit's own start (`bench_export.py --link-only`: 1.57x the same figure as a static file,
of which insight's script run is ~0.1 s). This route answers the same link with the page
`insight export` writes (`insight.export.panel_html`), built by the server from the same
cached panel results, with plotly.js as one file the browser keeps
(`/_insight/plotly.min.js`): no session, no websocket.

The link is parsed and checked as the embedded view checks it (`parse_query`: no paths, no
trust flags, parameters against the panel's schema; `model=` a name the server knows). A
model served from `s3://`/`gs://`, or a comparison panel of the `--compare` pair, is sent to
the embedded view, which fetches and pairs it. Errors are a small HTML page with the message
(status 400 for a bad link).

`insight serve` mounts the routes (`routes(opts)`); `streamlit run app.py` has only the
embedded view.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from insight.errors import InsightError, UsageError
from insight.launch import LaunchOptions

__all__ = ["routes", "page", "PANEL_PATH", "PLOTLY_PATH"]

PANEL_PATH = "/_insight/panel"
PLOTLY_PATH = "/_insight/plotly.min.js"
_STYLE = ("body{font-family:sans-serif;margin:2em;color:#31333f}"
          ".error{background:#ffecec;color:#7d353b;padding:1em 1.2em;border-radius:.5em}")


def routes(opts: LaunchOptions) -> list[Any]:
    """The Starlette routes of this page and of plotly.js, for `st.App(routes=...)`; the
    share popover offers the page's links from then on (`insight.ui.share`)."""
    import plotly
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import FileResponse
    from starlette.routing import Route

    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

    async def panel_page(request: Any) -> Any:
        # Loading a model and building a panel block: off the event loop.
        return await run_in_threadpool(page, opts, dict(request.query_params))

    async def plotly_file(request: Any) -> Any:
        # The installed plotly's own bundle; a week in the browser's cache (the file changes
        # only with the plotly package, and the server with it).
        return FileResponse(plotly_js, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=604800"})

    from insight.ui.share import offer_plain_pages

    offer_plain_pages()
    return [Route(PANEL_PATH, panel_page, methods=["GET"]),
            Route(PLOTLY_PATH, plotly_file, methods=["GET"])]


def page(opts: LaunchOptions, query: dict[str, str]) -> Any:
    """The response for one link: the panel's page, a redirect to the embedded view, or an
    error page."""
    from starlette.responses import HTMLResponse, RedirectResponse

    from insight.export import panel_html
    from insight.export.deeplink import parse_query
    from insight.panels.registry import PanelContext
    from insight.ui.cache import get_model, panel
    from insight.ui.share import link_target, plain_page_serves
    from insight.ui.widgets import location

    try:
        link = parse_query(query)
        ref, data, logdir = link_target(link.model, opts)
        if not plain_page_serves(ref, link.panel, opts):
            embed = {**query, "embed": "true"}
            return RedirectResponse("/?" + urlencode(embed), status_code=307)
        loaded = get_model(ref)
        ctx = PanelContext(loaded, location(data), location(logdir))
        result = panel(link.panel, ref, ctx, **link.params)
        # Relative: the page is at /_insight/panel, plotly.js beside it (any base path).
        text = panel_html(result, link.panel, link.params, loaded.name,
                          plotlyjs=PLOTLY_PATH.rsplit("/", 1)[-1])
        return HTMLResponse(text)
    except InsightError as exc:
        return HTMLResponse(_error(exc), status_code=400 if isinstance(exc, UsageError) else 500)
    except Exception as exc:  # noqa: BLE001  a page, never a traceback, reaches the wiki
        return HTMLResponse(_error(exc), status_code=500)


def _error(exc: BaseException) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>insight: this panel "
            f"cannot be shown</title><style>{_STYLE}</style></head><body><div class='error'>"
            f"<b>This panel cannot be shown.</b> {html.escape(str(exc))}</div></body></html>")
