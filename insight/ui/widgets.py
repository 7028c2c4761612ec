"""Rendering helpers shared by pages: the current model, panels by kind, the model card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from insight.data import Dataset
from insight.errors import UsageError
from insight.model.fetched import fetched_from
from insight.model.preflight import Preflight
from insight.panels.activations import DEAD_LIMIT, SATURATED_LIMIT
from insight.panels.registry import PanelContext, Param, get_panel
from insight.remote import is_remote
from insight.ui.cache import ModelRef, get_dataset, get_model, get_preflight, panel
from insight.ui.feedback import show_error

__all__ = ["require_ref", "require_preflight", "require_model", "show_panel", "param_of",
           "file_header", "model_card", "require_probing", "require_dataset", "location"]


def location(value: str | Path | None) -> Path | str | None:
    """A data, logdir or vectors value as the panels take it: a local path as a `Path`, an
    `s3://`/`gs://` URL as the string it is (`Path` would fold its `//` into one slash).

    >>> location("s3://bucket/runs"), location("logs/run1"), location(None)
    ('s3://bucket/runs', PosixPath('logs/run1'), None)
    """
    if value is None or str(value) == "":
        return None
    return str(value) if is_remote(str(value)) else Path(value)


def require_ref() -> ModelRef:
    """The model chosen in the sidebar, or an empty state and `st.stop()`."""
    ref: ModelRef | None = st.session_state.get("insight_ref")
    if ref is None:
        st.info("No model selected: choose one in the sidebar, or type a path.",
                icon=":material/arrow_back:")
        st.stop()
    return ref


def require_preflight(ref: ModelRef) -> Preflight:
    """The file's static report, or its error and `st.stop()`."""
    try:
        return get_preflight(ref)
    except Exception as exc:
        show_error(exc)
        st.stop()


def require_model(ref: ModelRef) -> PanelContext:
    """A panel context with the loaded model, or the load error and `st.stop()`."""
    try:
        name = (fetched_from(ref.path) or str(ref.path)).rstrip("/").rsplit("/", 1)[-1]
        with st.spinner(f"Loading {name} (TensorFlow starts on first use)…"):
            loaded = get_model(ref)
    except Exception as exc:
        show_error(exc)
        st.stop()
    data = st.session_state.get("insight_data")
    logdir = st.session_state.get("insight_logdir")
    return PanelContext(loaded, location(data), location(logdir))


def require_probing(ctx: PanelContext, what: str) -> None:
    """Stop with the reason when the model's format rules out `what` ("activations",
    "gradients"), e.g. for a SavedModel."""
    reason = ctx.loaded.limits.get(what)
    if reason:
        st.info(f"**No {what} for this model.** {reason[0].upper()}{reason[1:]}. Open the "
                "Keras file (.keras or .h5) it was exported from to see them.",
                icon=":material/block:")
        st.stop()


def require_dataset(ctx: PanelContext) -> Dataset:
    """The model's data (cached), said in one line; synthetic inputs and NaN/Inf values are
    called out. A data error is shown and stops the page."""
    try:
        with st.spinner("Reading the data…"):
            ds = get_dataset(ctx)
    except Exception as exc:
        show_error(exc)
        st.stop()
    if ds.synthetic:
        st.warning(f"**Synthetic inputs: no data given.** {len(ds):,} random examples built "
                   "from the model's input spec, so statistics describe the model, not your "
                   "data. Give a data file in the sidebar (or `--data`) for real ones.",
                   icon=":material/casino:")
    else:
        st.caption(f"Data: {ds.describe()}")
    if ds.nonfinite:
        counts = ", ".join(f"{n:,} in {k!r}" for k, n in ds.nonfinite.items())
        st.warning(f"**NaN/Inf in the inputs** ({counts}): activations and gradients of "
                   "those examples are not finite and can hide everything else.",
                   icon=":material/warning:")
    return ds


def probe_page(title: str, what: str) -> tuple[ModelRef, PanelContext, Dataset]:
    """The common top of the pages that run the model on data: the chosen model, its title,
    the format check for `what` and the data, or an empty/error state and `st.stop()`."""
    ref = require_ref()
    ctx = require_model(ref)
    st.title(title)
    require_probing(ctx, what)
    return ref, ctx, require_dataset(ctx)


def param_of(panel_name: str, param_name: str) -> Param:
    """The `Param` a widget stands for: its default, choices, help and range come from the
    panel's schema, so the page and the panel cannot disagree.

    Raises:
        UsageError: no such panel, or no such parameter (the valid ones are listed).

    Example:

    >>> param_of("training_curves", "weight").default  # doctest: +SKIP
    0.6
    """
    spec = get_panel(panel_name)
    for param in spec.params:
        if param.name == param_name:
            return param
    names = ", ".join(p.name for p in spec.params) or "none"
    raise UsageError(f"Panel {panel_name!r} has no parameter {param_name!r}. Its parameters "
                     f"are: {names}.", "", f"panel={panel_name!r}, param={param_name!r}")


def show_panel(name: str, ref: ModelRef, ctx: PanelContext, *, slot: Any = None,
               share: bool = True, key: str | None = None, on_select: Any = None,
               **params: Any) -> Any:
    """Build (cached) and place a registered panel according to its kind, in `slot` (an
    `st.empty()`) when given, so a later call can replace it. With `share`, a "Share" control
    under it gives its deep link, wiki embed code and HTML/PNG downloads (once the model
    is loaded). `key` names a figure's chart (its share control gets `share|<key>`), so one
    page can show the same panel more than once; `None`: keyed by the panel's name.
    `on_select`: a callback run when a point of a figure is clicked (its selection is in
    `st.session_state[<the chart's key>]`)."""
    spec = get_panel(name)
    where = slot.container() if slot is not None else st.container()
    try:
        result = panel(name, ref, ctx, **params)
    except Exception as exc:
        with where:
            show_error(exc)
        return None
    phase = "loaded" if ctx.loaded is not None else "static"
    if spec.kind == "figure":
        select = {} if on_select is None else {"on_select": on_select,
                                                "selection_mode": "points"}
        where.plotly_chart(result, theme=None, key=key or f"{name}-{phase}",
                           config={"displaylogo": False}, **select)
    elif spec.kind == "table":
        _table(result, where)
    elif spec.kind == "card":
        with where:
            if name == "model_card":
                model_card(result)
            else:
                _card(result)
    elif spec.kind == "dot":
        where.graphviz_chart(result)
    if share and (ctx.loaded is not None or "model" not in spec.uses):
        from insight.ui.share import share_control

        with where:
            share_control(name, ref, ctx, params, result, key=f"share|{key}" if key else
                          f"{name}|{phase}|{json.dumps(params, sort_keys=True, default=str)}")
    return result


def _card(card: dict[str, Any]) -> None:
    """A card as people read one: its plain values as a two-column table, each list of
    records (a layer's weights) as a table of its own."""
    plain = {k: v for k, v in card.items() if not isinstance(v, list | dict)}
    st.dataframe(pd.DataFrame({"": list(plain), "value": [str(v) for v in plain.values()]}),
                 hide_index=True, width="stretch")
    for k, v in card.items():
        if isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
            st.markdown(f"**{k.replace('_', ' ').capitalize()}**")
            st.dataframe(pd.DataFrame(v), hide_index=True, width="stretch")
        elif isinstance(v, dict | list) and v:
            st.markdown(f"**{k.replace('_', ' ').capitalize()}**")
            st.json(v, expanded=False)


def _table(frame: pd.DataFrame, where: Any) -> None:
    config = {
        "params": st.column_config.NumberColumn("params", format="localized", width="small"),
        "trainable": st.column_config.CheckboxColumn("trainable", width="small"),
        "output_shape": st.column_config.TextColumn("output shape"),
        "activation": st.column_config.TextColumn("activation", width="small"),
        **_PROBE_COLUMNS,
    }
    order = [c for c in frame.columns if c != "depth"]
    # placeholder: an empty cell (NaN: not measured for this layer) reads empty, not "None"
    where.dataframe(frame, hide_index=True, column_config=config, column_order=order,
                    placeholder="")


_PROBE_COLUMNS = {  # the activation and gradient tables
    "flag": st.column_config.TextColumn(
        "flag", width=150, help=f"The doctor's findings about the layer. Dead: at least "
        f"{DEAD_LIMIT:.0%} of a ReLU layer's units are 0 for every example, where the zeros "
        f"arise (not in layers that pass them on). Saturated: a hidden layer with over "
        f"{SATURATED_LIMIT:.0%} of its values at their limits (an output layer's saturation is "
        f"expected, never flagged). Scale: the activations' spread grew or shrank 100× over "
        f"a few layers."),
    "histogram": st.column_config.BarChartColumn(
        "histogram", y_min=0.0, width=90,
        help="Activation values from the layer's min to max, 32 bins."),
    "units": st.column_config.NumberColumn("units", width="small"),
    "shape": st.column_config.TextColumn("shape", help="Output shape of one example."),
    "mean": st.column_config.NumberColumn("mean", format="%.3g", width="small"),
    "std": st.column_config.NumberColumn("std", format="%.3g", width="small"),
    "zero_fraction": st.column_config.NumberColumn("zeros", format="percent", width="small"),
    "dead_fraction": st.column_config.NumberColumn("dead units", format="percent", width="small"),
    "saturated_fraction": st.column_config.NumberColumn(
        "saturated", format="percent", width="small", help="Sigmoid or tanh values near "
        "their limits, or softmax rows above 0.99; empty for other activations."),
    "weight_norm": st.column_config.NumberColumn("weight norm", format="%.3g"),
    "weight_grad_norm": st.column_config.NumberColumn("weight gradient norm", format="%.3g"),
    "activation_grad_norm": st.column_config.NumberColumn(
        "output gradient norm", format="%.3g", help="Mean over the examples of the L2 norm of "
        "the gradient with respect to the layer's output."),
}


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


_FORMATS = {"keras": ".keras (Keras v3)", "h5": "legacy HDF5 (.h5)",
            "savedmodel": "TF SavedModel"}


def file_header(pf: Preflight) -> None:
    """Title, identity line and the file check: all read from the file, before loading."""
    name = (pf.config or {}).get("config", {}).get("name") if pf.config else None
    shown = pf.shown  # a fetched model's URL: the cache's copy is no path of the user's
    st.title(str(name or shown.rstrip("/").rsplit("/", 1)[-1]))
    size = pf.model_file.stat().st_size if pf.model_file.is_file() else sum(
        p.stat().st_size for p in pf.model_file.rglob("*") if p.is_file())
    saved = f"saved with Keras {pf.keras_version}" if pf.keras_version else \
        "Keras version not recorded"
    st.caption(f"{_FORMATS[pf.format]} · {pf.model_class or '?'} · {saved} · {_size(size)} · "
               f"`{shown}`")
    with st.expander("File check (read before loading, no code run)", expanded=True):
        for line in pf.findings():
            st.markdown(f"- {line}")


def model_card(card: dict[str, Any]) -> None:
    """The loaded model's card: counts, inputs/outputs, what its format rules out."""
    cols = st.columns(4)
    cols[0].metric("Parameters", f"{card['total_params']:,}")
    cols[1].metric("Trainable", f"{card['trainable_params']:,}")
    cols[2].metric("Non-trainable", f"{card['non_trainable_params']:,}")
    cols[3].metric("Layers", card["layer_count"])
    left, right = st.columns(2)
    for col, key, title in ((left, "inputs", "Inputs"), (right, "outputs", "Outputs")):
        col.markdown(f"**{title}**")
        if card[key]:
            col.dataframe(pd.DataFrame(card[key]), hide_index=True)
        elif not card["built"]:
            col.caption("Unknown until the model is built.")
        else:
            col.caption("Not stored for a subclassed model: its call() computes them.")
    if card["limits"]:
        st.warning("**What this format rules out.** " + " ".join(
            f"No {k}: {v}." for k, v in card["limits"].items()), icon=":material/block:")

