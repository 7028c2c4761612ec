"""Training: loss and metric curves of every run in the logdir (event files, CSVLogger CSV or
Keras history JSON, on disk or in `s3://` / `gs://`), train and validation together, smoothed
over the faint raw curve, best validation step and overfitting marked; weight histograms over
training; live mode."""

import streamlit as st

from insight.curves.remote import relist
from insight.errors import InsightError
from insight.panels import PanelContext
from insight.panels.curves import metric_order
from insight.ui.cache import ModelRef, panel
from insight.ui.curves import (
    VERDICT_COLUMNS,
    curve_controls,
    histogram_controls,
    logdir_error,
    logdir_health,
    no_scalars,
    require_logdir,
)
from insight.ui.doctor import page_findings
from insight.ui.widgets import location, show_panel

MAX_CHARTS = 24

st.title("Training")
logdir = require_logdir()
ref = st.session_state.get("insight_ref") or ModelRef("")
ctx = PanelContext(logdir=location(logdir))
live, params = curve_controls()
filters = {"runs": params["runs"], "tags": params["tags"]}


@st.fragment(run_every=2.0 if live else None)
def curves() -> None:
    if live:
        relist(logdir)  # a remote logdir's kept listing would hide what was just written
    try:
        status = panel("logdir_status", ref, ctx)
        index = panel("curve_index", ref, ctx, **filters)
    except Exception as exc:  # noqa: BLE001 - shown, nothing else to draw
        logdir_error(exc)
        return
    logdir_health(status, logdir, live)
    if index.empty:
        no_scalars(filtered=any(filters.values()))
        return
    verdicts = panel("train_val_verdicts", ref, ctx, **filters)
    page_findings("training", ref, ctx)  # the doctor's verdicts on the curves
    metrics = metric_order(index)
    if len(metrics) > MAX_CHARTS:
        st.caption(f"Showing the first {MAX_CHARTS} of {len(metrics)} metrics: narrow them "
                   "with the tag filter.")
    cols = st.columns(2)
    for i, metric in enumerate(metrics[:MAX_CHARTS]):
        with cols[i % 2]:
            show_panel("training_curves", ref, ctx, key=f"curve|{metric}", metric=metric,
                       **params)
    if not verdicts.empty:
        st.subheader("Train / validation")
        st.dataframe(verdicts, hide_index=True, column_config=VERDICT_COLUMNS)
    with st.expander(f"All {len(index)} scalar series"):
        st.dataframe(index, hide_index=True)


curves()

try:
    hist_index = panel("histogram_index", ref, ctx)
except InsightError:  # the curves above already show why the logdir is unreadable
    hist_index = None
if hist_index is not None and not hist_index.empty:
    st.subheader("Histograms over training")
    show_panel("histogram_history", ref, ctx, **histogram_controls(hist_index))
