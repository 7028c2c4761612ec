"""A plotly chart that stays mounted: the Embeddings page's scatter.

`st.plotly_chart` remounts its chart whenever the figure changes (a new WebGL context, the
points drawn twice): 100,000 points took seconds to recolour. This component keeps one
chart per key and redraws it with `Plotly.react`; the figure travels as binary arrays that
the page keeps (`wire`), so a colour change sends about a byte per point. Clicked or lassoed
points come back to Python as their indices (the figure's first `customdata` value).

plotly.js is the installed plotly package's bundle, served by the running Streamlit server
from that package's folder (nothing from a CDN). Exports and deep links keep
`st.plotly_chart`: this is only how the app draws the figure.

Example (in a Streamlit page):

    picked = scatter_chart(fig, key="proj_chart|main")
    if picked:
        st.write(f"point {picked[0]}")
"""

from __future__ import annotations

from pathlib import Path

import plotly
import plotly.graph_objects as go
import streamlit as st
from streamlit import config as st_config
from streamlit.components import v1 as components_v1

from insight.ui.scatter_component.wire import pack

__all__ = ["scatter_chart", "HELD_PREFIX"]

HELD_PREFIX = "_insight_scatter_held|"  # session state: the blobs a chart's page holds
_JS = (Path(__file__).parent / "scatter.js").read_text()
_CONFIG = {"displaylogo": False, "responsive": True}
_mount = st.components.v2.component("insight_scatter", js=_JS, isolate_styles=False)


def _plotly_url() -> str:
    """Where this server serves the plotly package's own plotly.js.

    A v1 component whose folder is plotly's `package_data`: Streamlit serves a registered
    component's files at `<base>/component/<name>/<file>`."""
    folder = Path(plotly.__file__).parent / "package_data"
    served = components_v1.declare_component("plotly_js", path=str(folder))
    base = str(st_config.get_option("server.baseUrlPath") or "").strip("/")
    return "/" + "/".join(p for p in (base, "component", served.name, "plotly.min.js") if p)


def scatter_chart(fig: go.Figure, *, key: str) -> list[int]:
    """Draw `fig` in the chart kept under `key`; the points picked by this run's click or
    lasso (their first `customdata` value), else `[]`.

    Args:
        fig: the figure; traces whose `customdata` starts with a point index travel as
            gathers from one copy of the points (see `wire`).
        key: the chart's identity: the same key redraws the same chart.
    """
    held_key = HELD_PREFIX + key
    held = st.session_state.get(held_key, frozenset())
    message, uses = pack(fig.to_plotly_json(), held=held,
                         extra={"key": key, "plotly": _plotly_url(), "config": _CONFIG})
    st.session_state[held_key] = uses
    result = _mount(key=key, data=message, on_select_change=_nothing,
                    on_missing_change=_nothing)
    # The page lacks arrays this session sent it (it keeps those of 4 charts, or a draw
    # failed): send them all again.
    if result.get("missing"):
        st.session_state[held_key] = frozenset()
        st.rerun()
    return [int(p) for p in (result.get("select") or [])]


def _nothing() -> None:
    """Triggers are read from the result; a callback only declares them."""
