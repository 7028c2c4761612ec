"""The "Share" control under every panel: its deep link, the iframe snippet for a wiki, and
HTML/PNG downloads made by the same code as `insight export`.

Links name models only the way the server knows them (`insight.export.deeplink`): the server's
default model (no `model=`, also when it is served from `s3://`: the link never carries the
URL), or a bundled sample by name. A model opened from a path typed in
the sidebar has no link (the URL cannot carry a path), but can still be downloaded.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import streamlit as st

from insight.errors import InsightError, UsageError
from insight.export.deeplink import iframe_html, page_url, share_url
from insight.launch import LaunchOptions
from insight.model.fetched import fetched_from
from insight.model.samples import list_samples
from insight.panels.registry import PanelContext, get_panel, validate_params
from insight.remote import is_remote
from insight.ui.cache import ModelRef

__all__ = ["share_control", "link_targets", "link_target", "link_model_name", "base_url",
           "render_problem", "offer_plain_pages", "plain_page_serves"]


@functools.lru_cache(maxsize=8)  # the samples and launch options do not change while serving
def link_targets(opts: LaunchOptions) -> dict[str | None, tuple[ModelRef, str | None, str | None]]:
    """What a link's `model=` may name: `None` (the server's default model) and each sample,
    each with the data and logdir the sidebar would give it."""
    out: dict[str | None, tuple[ModelRef, str | None, str | None]] = {}
    if opts.model:
        out[None] = (ModelRef(opts.model, not opts.unsafe, opts.custom_objects), opts.data,
                     opts.logdir)
    for s in list_samples():
        co = str(s.custom_objects) if s.custom_objects else None
        target = (ModelRef(str(s.model), True, co), opts.data or _str(s.data),
                  opts.logdir or _str(s.logdir))
        out[s.name] = target
        out.setdefault(None, target)
    return out


_PLAIN_PAGES: list[bool] = []


def offer_plain_pages() -> None:
    """Offer each link's plain page too (`insight serve` mounts `insight.ui.static_panel`;
    `streamlit run app.py` does not)."""
    _PLAIN_PAGES.append(True)


def plain_page_serves(target: ModelRef, name: str, opts: LaunchOptions) -> bool:
    """Whether `/_insight/panel` draws panel `name` of the link target `target` itself; it
    sends a model from `s3://`/`gs://` (fetched first) and a comparison panel of the
    `--compare` pair (paired first) to the embedded view instead."""
    paired = bool(opts.compare) and target.path == opts.model and \
        "compare" in get_panel(name).uses
    return not is_remote(target.path) and not paired


def link_target(model: str | None, opts: LaunchOptions
                ) -> tuple[ModelRef, str | None, str | None]:
    """`(model ref, data, logdir)` of a link's `model=` (see `link_targets`).

    Raises:
        UsageError: no model of that name on this server (the message lists them).
    """
    targets = link_targets(opts)
    if model not in targets:
        names = ", ".join(sorted(n for n in targets if n))
        raise UsageError(f"No model named {model!r} on this server. Its models are: {names}.",
                         "Leave model= out for the server's default model.", f"model={model!r}")
    return targets[model]


def _str(path: Path | None) -> str | None:
    return str(path) if path else None


def link_model_name(ref: ModelRef, opts: LaunchOptions) -> tuple[bool, str | None]:
    """`(shareable, model=)` for the model the page shows. A remote model is shown from its
    local copy: it is the server's model when that copy was fetched from the server's URL."""
    paths = {ref.path, fetched_from(ref.path)} - {None}
    for name, (target, _, _) in link_targets(opts).items():
        if target.path in paths and target.safe_mode == ref.safe_mode:
            return True, name
    return False, None


def base_url() -> str:
    """The app's root URL as the browser sees it (the server's address under tests)."""
    prefix = (st.get_option("server.baseUrlPath") or "").strip("/")
    url = st.context.url
    if url:
        parts = urlsplit(url)
        root = f"{parts.scheme}://{parts.netloc}"
    else:
        root = f"http://{st.get_option('server.address') or 'localhost'}:" \
               f"{st.get_option('server.port')}"
    return f"{root}/{prefix + '/' if prefix else ''}"


def render_problem() -> str:
    """Why the server cannot draw PNGs (kaleido missing, no Chromium), or `""` when it can."""
    from insight.export.render import check_rendering

    try:
        check_rendering()
    except InsightError as exc:
        return str(exc)
    return ""


def share_control(name: str, ref: ModelRef, ctx: PanelContext, params: Mapping[str, Any],
                  result: Any, *, key: str) -> None:
    """Draw the share popover of one drawn panel."""
    from insight.export.files import panel_html, render_result
    from insight.export.render import shared_renderer
    from insight.ui.sidebar import launch_options

    spec = get_panel(name)
    typed = validate_params(spec, params)
    opts = launch_options()
    shareable, model = link_model_name(ref, opts)
    model_label = ctx.loaded.name if ctx.loaded is not None else \
        (fetched_from(ref.path) or ref.path).rstrip("/").rsplit("/", 1)[-1]
    with st.popover("Share", icon=":material/share:", type="tertiary",
                    help=f"Link, wiki embed code and downloads of “{spec.title}”"):
        if shareable:
            url = share_url(base_url(), name, typed, model)
            st.caption("Link: renders just this panel, full width")
            st.code(url, language=None, wrap_lines=True)
            st.caption("Embed in a wiki page")
            st.code(iframe_html(url, spec.title), language="html", wrap_lines=True)
            target, data, logdir = link_targets(opts)[model]
            if _PLAIN_PAGES and plain_page_serves(target, name, opts):
                st.caption("Or as a plain page: no app session, quicker in a wiki; the "
                           "panel as the HTML download below")
                st.code(page_url(base_url(), name, typed, model), language=None,
                        wrap_lines=True)
            uses = get_panel(name).uses
            if ("data" in uses and _differs(ctx.data_path, data)) or (
                    "logdir" in uses and _differs(ctx.logdir, logdir)):
                st.caption(":material/warning: The link uses the data and logdir the server "
                           "was started with, not the paths typed in the sidebar.")
        else:
            st.caption("No link: this model was opened from a path typed in the sidebar, and "
                       "links only name the server's models (its command-line model or a "
                       "sample). The downloads below work.")
        left, right = st.columns(2)
        left.download_button(
            "HTML", data=lambda: panel_html(result, name, typed, model_label),
            file_name=f"{name}.html", mime="text/html", key=f"share_html|{key}",
            on_click="ignore", icon=":material/download:",
            help="Self-contained: plotly.js inlined, opens offline.")
        problem = render_problem()
        right.download_button(
            "PNG", data=lambda: render_result(result, name, "png", shared_renderer()),
            file_name=f"{name}.png", mime="image/png", key=f"share_png|{key}",
            on_click="ignore", icon=":material/image:", disabled=bool(problem),
            help="Rendered by the server's Chromium, as `insight export` does."
            if not problem else "The server cannot draw PNGs: see the message below.")
        if problem:  # the reason, not a traceback when the button is clicked
            st.warning(f"**No PNG download.** {problem}", icon=":material/image_not_supported:")


def _differs(current: Path | str | None, served: str | None) -> bool:
    if current is None and served is None:
        return False
    if current is None or served is None:
        return True
    if is_remote(str(current)) or is_remote(served):
        return str(current) != served
    return Path(current).resolve() != Path(served).resolve()
