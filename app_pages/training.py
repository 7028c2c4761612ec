"""Training: loss and metric curves of every run in the logdir (event files, CSVLogger CSV or
Keras history JSON), train and validation together, smoothed over the faint raw curve, best
validation step and overfitting marked; weight histograms over training; live mode."""

from pathlib import Path

import streamlit as st

from insight.curves.analysis import SMOOTHING, metric_direction
from insight.panels import PanelContext
from insight.panels.curves import SMOOTHING_TITLES, X_AXES
from insight.ui.cache import ModelRef, panel
from insight.ui.feedback import show_error
from insight.ui.share import share_control
from insight.ui.widgets import show_panel

MAX_CHARTS = 24
X_TITLES = {"step": "Step", "relative": "Relative", "wall": "Wall"}

st.title("Training")
logdir = st.session_state.get("insight_logdir")
if not logdir:
    st.info("**No logdir.** Give one in the sidebar (or `insight serve --logdir DIR`): a "
            "TensorBoard logdir, a CSVLogger `.csv` or a Keras history `.json`. The samples "
            "bring their own.", icon=":material/arrow_back:")
    st.stop()
ref = st.session_state.get("insight_ref") or ModelRef("")
ctx = PanelContext(logdir=Path(logdir))

top = st.columns([2, 2, 2, 0.8, 0.8], vertical_alignment="bottom")
runs = top[0].text_input("Runs (regex)", key="train_runs", placeholder="e.g. train|validation")
tags = top[1].text_input("Tags (regex)", key="train_tags", placeholder="e.g. loss|acc")
x = top[2].segmented_control("x axis", X_AXES, default="step", key="train_x",
                             format_func=X_TITLES.get) or "step"
log_y = top[3].toggle("Log y", key="train_log")
live = top[4].toggle("Live", key="train_live", help="Follow runs still being written: "
                     "re-read only the bytes appended since the last look, every 2 s.")
row = st.columns([2, 3, 3], vertical_alignment="bottom")
method = row[0].selectbox("Smoothing", SMOOTHING, index=1, key="train_smoothing",
                          format_func=SMOOTHING_TITLES.get)
if method == "ema":
    weight = row[1].slider("Weight", 0.0, 0.99, 0.6, 0.01, key="train_weight",
                           help="TensorBoard's debiased EMA, same formula and default.")
elif method != "none":
    window = row[1].slider("Window (points)", 3, 201, 9, 2, key="train_window",
                           help="Points the centred moving average spans; the Gaussian's "
                                "standard deviation is a quarter of it.")
points = row[2].select_slider("Points per series", [500, 1000, 2000, 5000, 10000], 2000,
                              key="train_points", help="Downsampled with MinMaxLTTB, which "
                              "keeps every minimum and maximum; NaN/Inf always shown.")
params = dict(runs=runs, tags=tags, x=x, y_scale="log" if log_y else "linear",
              smoothing=method, weight=st.session_state.get("train_weight", 0.6),
              window=st.session_state.get("train_window", 9), points=points)


@st.fragment(run_every=2.0 if live else None)
def curves() -> None:
    try:
        status = panel("logdir_status", ref, ctx)
        index = panel("curve_index", ref, ctx, runs=runs, tags=tags)
    except Exception as exc:  # noqa: BLE001 - shown, nothing else to draw
        show_error(exc)
        return
    line = (f"`{logdir}` · {status['files']} file(s) · {status['series']} series · "
            f"{status['points']:,} points")
    st.caption(line + (" · **live**" if live else ""))
    for problem in status["problems"]:
        st.warning(problem, icon=":material/warning:")
    if status["nonfinite"]:
        n = status["nonfinite"]
        st.warning(f"**{n:,} NaN/Inf value{'s' if n > 1 else ''}** in these logs: marked with "
                   "a red × on the curves where they occur.", icon=":material/warning:")
    if index.empty:
        st.info("**No scalars here yet**" + (" matching these filters." if runs or tags else
                ": no event file, CSVLogger CSV or history JSON with values. In live mode "
                "curves appear as soon as the first points are written."),
                icon=":material/show_chart:")
        return
    verdicts = panel("train_val_verdicts", ref, ctx, runs=runs, tags=tags)
    for v in verdicts[verdicts.overfitting_from.notna()].itertuples():
        st.warning(f"**Overfitting in `{v.metric}` ({v.group})**: validation loss rises from "
                   f"step {int(v.overfitting_from)} while training loss keeps falling; the best "
                   f"validation value was at step {int(v.best_val_step)}.",
                   icon=":material/trending_up:")
    metrics = sorted(index.metric.unique(),
                     key=lambda m: (metric_direction(m) != "min", metric_direction(m) != "max",
                                    m))
    if len(metrics) > MAX_CHARTS:
        st.caption(f"Showing the first {MAX_CHARTS} of {len(metrics)} metrics: narrow them "
                   "with the tag filter.")
    cols = st.columns(2)
    for i, metric in enumerate(metrics[:MAX_CHARTS]):
        with cols[i % 2]:
            try:
                fig = panel("training_curves", ref, ctx, metric=metric, **params)
            except Exception as exc:  # noqa: BLE001
                show_error(exc)
                continue
            st.plotly_chart(fig, theme=None, key=f"curve|{metric}",
                            config={"displaylogo": False})
            share_control("training_curves", ref, ctx, {"metric": metric, **params}, fig,
                          key=f"share|curve|{metric}")
    if not verdicts.empty:
        st.subheader("Train / validation")
        st.dataframe(verdicts, hide_index=True, column_config={
            "best_val_step": st.column_config.NumberColumn("best val step"),
            "best_val": st.column_config.NumberColumn("best val", format="%.4g"),
            "last_val": st.column_config.NumberColumn("last val", format="%.4g"),
            "overfitting_from": st.column_config.NumberColumn("overfitting from step")})
    with st.expander(f"All {len(index)} scalar series"):
        st.dataframe(index, hide_index=True)


curves()

hist_index = panel("histogram_index", ref, ctx)
if not hist_index.empty:
    st.subheader("Histograms over training")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    labels = [f"{r.run} · {r.tag}" for r in hist_index.itertuples()]
    choice = left.selectbox("Histogram", range(len(labels)), format_func=labels.__getitem__,
                            key="train_hist", help="Weight histograms written by Keras' "
                            "TensorBoard(histogram_freq=...) or tf.summary.histogram.")
    mode = right.segmented_control("View", ["heatmap", "ridge"], default="heatmap",
                                   key="train_hist_mode") or "heatmap"
    pick = hist_index.iloc[choice]
    show_panel("histogram_history", ref, ctx, run=pick.run, tag=pick.tag, mode=mode)
