"""The embedded view: `/?embed=true&panel=NAME&k=v...` renders one panel and nothing else.

`insight.ui.shell.main` calls `render_embed` before navigation when the URL names a panel, so
there is no sidebar and no page. Bad links (no or unknown panel, unknown parameter, bad value,
a path or trust flag, an unknown model) show one error that lists the valid choices.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from insight.errors import UsageError
from insight.export.deeplink import parse_query
from insight.launch import LaunchOptions
from insight.panels.registry import PanelContext, get_panel
from insight.ui.cache import get_model
from insight.ui.feedback import show_error
from insight.ui.share import link_targets
from insight.ui.widgets import show_panel

__all__ = ["render_embed"]


def render_embed(opts: LaunchOptions) -> None:
    """Draw the panel the URL names (one script run)."""
    try:
        link = parse_query(st.query_params.to_dict())
        targets = link_targets(opts)
        if link.model not in targets:
            names = ", ".join(sorted(n for n in targets if n))
            raise UsageError(f"No model named {link.model!r} on this server. Its models are: "
                             f"{names}.", "Leave model= out for the server's default model.",
                             f"model={link.model!r}")
    except Exception as exc:
        show_error(exc)
        return
    ref, data, logdir = targets[link.model]
    try:
        with st.spinner("Loading the model…"):
            loaded = get_model(ref)
    except Exception as exc:
        show_error(exc)
        return
    # --compare belongs to the command-line model (the only one a link can pair with it).
    other = Path(opts.compare) if opts.compare and ref.path == opts.model else None
    ctx = PanelContext(loaded, Path(data) if data else None, Path(logdir) if logdir else None,
                       compare_path=other)
    spec = get_panel(link.panel)
    if spec.kind != "figure":  # figures carry their title; tables and cards get one here
        st.subheader(spec.title)
    show_panel(link.panel, ref, ctx, share=False, **link.params)
