"""The embedded view: `/?embed=true&panel=NAME&k=v...` renders one panel and nothing else.

`insight.ui.shell.main` calls `render_embed` before navigation when the URL names a panel, so
there is no sidebar and no page. A model served from `s3://`/`gs://` is fetched into insight's
cache through the sidebar's `local_copy` (the link itself names no URL and no path: the
server's default model, or a sample by name). Bad links (no or unknown panel, unknown
parameter, bad value, a path or trust flag, an unknown model) show one error that lists the
valid choices.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st

from insight.errors import StorageError
from insight.export.deeplink import parse_query
from insight.launch import LaunchOptions
from insight.panels.registry import PanelContext, get_panel
from insight.remote import is_remote
from insight.ui.cache import get_model
from insight.ui.feedback import progress_bar, show_error
from insight.ui.share import link_target
from insight.ui.sidebar import local_copy
from insight.ui.widgets import location, show_panel

__all__ = ["render_embed"]


def render_embed(opts: LaunchOptions) -> None:
    """Draw the panel the URL names (one script run)."""
    try:
        link = parse_query(st.query_params.to_dict())
        ref, data, logdir = link_target(link.model, opts)
    except Exception as exc:
        show_error(exc)
        return
    # --compare belongs to the command-line model (the only one a link can pair with it).
    compare = opts.compare if opts.compare and ref.path == opts.model else None
    try:
        # A remote model (or second model) is fetched as the sidebar fetches it: the same
        # local copy, checked and loaded like a stranger's file. The link named no URL.
        with st.spinner("Fetching the model into insight's cache…" if is_remote(ref.path)
                        else "Loading the model…"):
            ref = replace(ref, path=local_copy(ref.path))
            compare = local_copy(compare) if compare else None
    except StorageError as exc:  # the file was never read: said as a storage problem
        st.error(f"**Cannot fetch the model.** {exc}", icon=":material/cloud_off:")
        return
    except Exception as exc:
        show_error(exc)
        return
    try:
        with st.spinner("Loading the model…"):
            loaded = get_model(ref)
    except Exception as exc:
        show_error(exc)
        return
    other = Path(compare) if compare else None
    ctx = PanelContext(loaded, location(data), location(logdir), compare_path=other)
    spec = get_panel(link.panel)
    if spec.kind != "figure":  # figures carry their title; tables and cards get one here
        st.subheader(spec.title)
    with progress_bar() as progress:  # a long build (statistics over a stream, a UMAP)
        show_panel(link.panel, ref, replace(ctx, progress=progress), share=False,
                   **link.params)
