"""Figures of one model across its checkpoints: weight change per layer and epoch, CKA
against the final checkpoint, a layer's projection with an epoch slider.

Example:

>>> import pandas as pd
>>> from insight.figures.timeline import weight_change_heatmap
>>> df = pd.DataFrame({"layer": ["conv1", "conv1"], "depth": [0, 0], "epoch": [1, 2],
...                    "from_epoch": [0, 1], "relative_change": [0.4, 0.1],
...                    "cosine": [0.9, 0.99], "params": [80, 80]})
>>> weight_change_heatmap(df).data[0].type
'heatmap'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from insight.figures.template import COLORWAY, apply_template

__all__ = ["weight_change_heatmap", "cka_over_epochs", "projection_over_epochs", "VALUES"]

VALUES = {"relative_change": "relative change ‖ΔW‖ / ‖W‖", "cosine": "cosine to the previous"}
_HEAT = "Viridis"


def weight_change_heatmap(df: pd.DataFrame, value: str = "relative_change") -> go.Figure:
    """Layers (rows, first layer on top) by epochs (columns), coloured by `value`.

    Args:
        df: `insight.compare.timeline.weight_timeline`'s frame.
        value: `"relative_change"` or `"cosine"`. Defaults to `"relative_change"`.
    """
    table = df.pivot(index=["depth", "layer"], columns="epoch", values=value).sort_index()
    layers = [layer for _, layer in table.index]
    epochs = [int(e) for e in table.columns]
    z = table.to_numpy(np.float64)
    params = df.groupby("layer")["params"].last().reindex(layers).fillna(0).astype(int)
    custom = np.repeat(np.array([f"{p:,}" for p in params], dtype=object)[:, None],
                       len(epochs), axis=1)
    fig = go.Figure(go.Heatmap(
        z=z, x=[str(e) for e in epochs], y=layers, colorscale=_HEAT, customdata=custom,
        reversescale=value == "cosine", hoverongaps=False,
        colorbar=dict(title=dict(text="‖ΔW‖/‖W‖" if value == "relative_change" else "cos"),
                      thickness=12),
        hovertemplate="%{y} (%{customdata} params)<br>epoch %{x}<br>" + VALUES[value]
                      + " %{z:.3g}<extra></extra>"))
    quiet = _quiet_layers(table, value)
    note = "each cell: this epoch's weights against the previous checkpoint's"
    if quiet:
        note += f"; barely moving at the end: {', '.join(quiet[:4])}"
    apply_template(fig, title=f"Weight change per layer and epoch<br><sup>{note}</sup>")
    fig.update_layout(height=max(280, min(900, 28 * len(layers) + 150)),
                      xaxis=dict(title="epoch", type="category"),
                      yaxis=dict(autorange="reversed", type="category"))
    return fig


def _quiet_layers(table: pd.DataFrame, value: str) -> list[str]:
    """Layers whose last change is under 0.1% (frozen, dead, or converged)."""
    if value != "relative_change" or table.empty:
        return []
    last = table.iloc[:, -1]
    return [layer for (_, layer), v in last.items() if np.isfinite(v) and v < 1e-3]


def cka_over_epochs(df: pd.DataFrame) -> go.Figure:
    """One line per layer: its linear CKA against the final checkpoint, by epoch.

    Args:
        df: `insight.compare.timeline.cka_timeline`'s frame.
    """
    fig = go.Figure()
    for i, (_, g) in enumerate(df.sort_values(["depth", "epoch"]).groupby(
            "depth", sort=True)):
        name = str(g["layer"].iloc[0])
        fig.add_trace(go.Scatter(
            x=g["epoch"], y=g["cka"], mode="lines+markers", name=name,
            line=dict(color=COLORWAY[i % len(COLORWAY)], width=2), marker=dict(size=5),
            hovertemplate=f"{name}<br>epoch %{{x}}<br>CKA %{{y:.3f}}<extra></extra>"))
    apply_template(fig, title="Similarity to the final checkpoint<br><sup>linear CKA of "
                              "each layer's outputs against the same layer at the last "
                              "epoch: layers that reach 1 early have converged</sup>")
    fig.update_layout(height=380, xaxis=dict(title="epoch", dtick=1),
                      yaxis=dict(title="CKA", range=[0, 1.03]),
                      legend=dict(title=dict(text="layer")))
    return fig


def projection_over_epochs(df: pd.DataFrame, layer: str, labels: Sequence | None = None,
                           class_names: Sequence[str] | None = None) -> go.Figure:
    """A layer's aligned 2D layouts with an epoch slider (plotly frames: no server round
    trip per step), points coloured by label when there are labels.

    Args:
        df: `insight.compare.timeline.projection_timeline`'s frame.
        layer: the layer's path, for the title.
        labels: one label per input row. Defaults to `None`.
        class_names: names of integer labels. Defaults to `None`.
    """
    epochs = sorted(int(e) for e in df["epoch"].unique())
    first = df[df.epoch == epochs[0]].sort_values("row")
    n = len(first)
    names = _label_text(labels, class_names, n)
    groups = sorted(set(names), key=_natural) if names is not None else [None]

    def traces(frame: pd.DataFrame) -> list[go.Scatter]:
        frame = frame.sort_values("row")
        out = []
        for i, group in enumerate(groups):
            mask = np.ones(n, bool) if group is None else np.array(names) == group
            out.append(go.Scattergl(
                x=frame["x"].to_numpy()[mask], y=frame["y"].to_numpy()[mask], mode="markers",
                name=str(group) if group is not None else "inputs",
                marker=dict(size=5, color=COLORWAY[i % len(COLORWAY)], opacity=0.8),
                customdata=np.flatnonzero(mask),
                hovertemplate="row %{customdata}<extra>%{fullData.name}</extra>"))
        return out

    frames = [go.Frame(data=traces(df[df.epoch == e]), name=str(e)) for e in epochs]
    fig = go.Figure(data=traces(first), frames=frames)
    lim = float(np.nanmax(np.abs(df[["x", "y"]].to_numpy()))) * 1.05 if len(df) else 1.0
    steps = [dict(method="animate", label=str(e),
                  args=[[str(e)], dict(mode="immediate", frame=dict(duration=300, redraw=True),
                                       transition=dict(duration=250))]) for e in epochs]
    apply_template(fig, title=f"{layer} across epochs<br><sup>PCA per epoch, each aligned "
                              "to the previous by orthogonal Procrustes; drag the slider"
                              "</sup>")
    fig.update_layout(
        height=560, xaxis=dict(range=[-lim, lim], zeroline=False, title=""),
        yaxis=dict(range=[-lim, lim], zeroline=False, scaleanchor="x", title=""),
        legend=dict(title=dict(text="label" if names is not None else "")),
        sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="epoch "),
                      x=0.12, len=0.88, pad=dict(t=40))],
        updatemenus=[dict(type="buttons", showactive=False, x=0, y=0, xanchor="left",
                          yanchor="top", pad=dict(t=62), buttons=[dict(
                              label="▶ play", method="animate",
                              args=[None, dict(frame=dict(duration=500, redraw=True),
                                               transition=dict(duration=300),
                                               fromcurrent=True)])])])
    return fig


def _label_text(labels: Sequence | None, class_names: Sequence[str] | None,
                n: int) -> list[str] | None:
    if labels is None:
        return None
    arr = np.asarray(labels)[:n]
    if arr.ndim > 1:
        arr = arr.argmax(-1) if arr.shape[-1] > 1 else arr.reshape(-1)
    if class_names is not None and arr.dtype.kind in "iu":
        return [str(class_names[int(v)]) if 0 <= int(v) < len(class_names) else str(v)
                for v in arr]
    return [str(v) for v in arr]


def _natural(text: str) -> tuple:
    return (0, float(text), "") if _is_number(text) else (1, 0.0, text)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
