"""Runs: every run of a hyperparameter search with its hyperparameters and each metric's final
and best value (TensorBoard's hparams plugin, or hparams.json files), a parallel-coordinates
plot coloured by a metric, and each run's curves one click away on the Training page."""

import streamlit as st

from insight.curves.hparams import run_pattern
from insight.errors import InsightError
from insight.panels import PanelContext
from insight.panels.runs import default_metric, metric_columns, runs_folder, runs_of
from insight.ui.cache import ModelRef, with_memo
from insight.ui.curves import logdir_error
from insight.ui.shell import PAGE_DIR
from insight.ui.widgets import location, show_panel

st.title("Runs")
ref = st.session_state.get("insight_ref") or ModelRef("")
logdir = st.session_state.get("insight_logdir")
try:
    folder = runs_folder(logdir, ref.path or None)
except InsightError as exc:  # a remote logdir that cannot be listed or read
    logdir_error(exc)
    st.stop()
if folder is None:
    st.info("**No runs with hyperparameters.** Give a logdir (sidebar, or `--logdir`) whose "
            "runs were logged with `hp.KerasCallback(logdir, hparams)` or `hp.hparams(...)`, "
            "or a folder of runs each holding an `hparams.json`. The digits_cnn sample ships a "
            "small sweep.", icon=":material/table_rows:")
    st.stop()
ctx = PanelContext(logdir=folder)
beside = not logdir or location(logdir) != folder  # the sweep/ beside the model
if beside:
    st.caption(f"The sidebar's logdir records no hyperparameters: these are the runs in "
               f"`{folder.name}/` beside the model.")
else:
    st.caption(f"`{logdir}`")
try:
    runs = runs_of(with_memo(ctx))
except InsightError as exc:
    logdir_error(exc)
    st.stop()
columns = metric_columns(runs)
left, right = st.columns([2, 3], vertical_alignment="bottom")
metric = left.selectbox("Colour and sort by", columns, key=f"runs_metric|{folder}",
                        index=columns.index(default_metric(runs)) if columns else 0)
filter_ = right.text_input("Filter (regex over run names and hparam=value)", key="runs_filter",
                           placeholder="e.g. optimizer=adam")
if columns:
    show_panel("runs_parallel", ref, ctx, color=metric, filter=filter_)
table = show_panel("runs_table", ref, ctx, filter=filter_, sort=metric or "")


def open_curves(run: str) -> None:
    """Point the Training page at this run: its logdir in the sidebar, its run filter."""
    if beside:
        st.session_state["insight_logdir_path"] = str(folder)
    st.session_state["train_runs"] = run_pattern(run)


if table is not None and len(table):
    pick, go = st.columns([2, 3], vertical_alignment="bottom")
    run = pick.selectbox("Run", list(table["run"]), key=f"runs_pick|{folder}")
    if go.button("Show its curves on the Training page", icon=":material/show_chart:",
                 on_click=open_curves, args=(run,), key="runs_open"):
        st.switch_page(str(PAGE_DIR / "training.py"))
