"""Widgets of the Overview page: find a layer, open blocks of a big graph, pick a layer.

The graph's own clicks feed the same widgets: a click on a block opens it, a click on a layer
picks it (and the picked layer is outlined in the graph).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from insight.ui.widgets import param_of

__all__ = ["graph_controls", "layer_picker", "on_graph_click", "GRAPH_KEYS"]

GRAPH_KEYS = ("layer_graph-static", "layer_graph-loaded")  # show_panel's chart keys


def graph_controls(blocks: list[str], layers: list[str]) -> dict[str, Any]:
    """The search box and (for a graph collapsed into blocks) the block picker; returns the
    `layer_graph` parameters they set."""
    search = st.text_input("Find a layer", key="overview_search",
                           placeholder="a layer's name or part of it",
                           help=param_of("layer_graph", "search").help)
    expand = st.multiselect("Open blocks", blocks, key="overview_expand",
                            help=param_of("layer_graph", "expand").help) if blocks else []
    picked = st.session_state.get("overview_layer")
    picked = picked if picked in layers else None  # another model's, right after a switch
    return {"expand": ",".join(expand), "search": search or picked or ""}


def layer_picker(layers: list[str]) -> str | None:
    """The layer whose config and weights are shown, or `None` (the caption says how)."""
    layer = st.selectbox("Layer", layers, index=None, key="overview_layer",
                         placeholder="Pick a layer, or click one in the graph",
                         help=param_of("layer_details", "layer").help)
    if layer is None:
        st.caption("Pick a layer to see its config and weights; it is outlined in the graph.")
    return layer


def on_graph_click() -> None:
    """A clicked layer becomes the picked layer; a clicked block opens."""
    for key in GRAPH_KEYS:
        points = ((st.session_state.get(key) or {}).get("selection") or {}).get("points") or []
        if not points:
            continue
        node, kind = points[0]["customdata"][0], points[0]["customdata"][5]
        if kind == "layer":
            st.session_state["overview_layer"] = node
        else:
            opened = list(st.session_state.get("overview_expand", []))
            st.session_state["overview_expand"] = opened + ([node] if node not in opened
                                                            else [])
