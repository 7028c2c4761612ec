"""Figures of two models compared: CKA heatmap, weight change by depth, confusion between them.

Plain data in (frames from `insight.compare`), `go.Figure` out, through the one template.

Example:

>>> import pandas as pd
>>> fig = cka_figure(pd.DataFrame([[1.0, 0.2], [0.3, 0.9]], index=["a1", "a2"],
...                               columns=["b1", "b2"]))
>>> fig.data[0].type
'heatmap'
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from insight.figures.template import COLORWAY, apply_template, e_notation

__all__ = ["cka_figure", "weight_change_figure", "confusion_figure", "status_colors",
           "STATUS_COLORS"]

# One colour per architecture-diff status, as `git diff` readers expect them.
STATUS_COLORS = {"same": "#9a9a9a", "changed": COLORWAY[1], "added": COLORWAY[2],
                 "removed": COLORWAY[3]}


def status_colors() -> dict[str, str]:
    """The colour of each architecture-diff status (a copy)."""
    return dict(STATUS_COLORS)


def _short(name: str, limit: int = 28) -> str:
    return name if len(name) <= limit else "…" + name[-(limit - 1):]


def cka_figure(matrix: pd.DataFrame, *, title: str = "Representation similarity (linear CKA)",
               name_a: str = "A", name_b: str = "B", note: str = "") -> go.Figure:
    """Heatmap of CKA between every layer of A (rows, top to bottom) and B (columns).

    Each row's best-matching layer of B is marked with a dot, so the correspondence between
    two different architectures reads as a path.

    Args:
        matrix: `[layers of A] x [layers of B]` CKA values (`nan`: a constant layer).
        title: the figure title.
        name_a: A's name on the y axis. Defaults to `"A"`.
        name_b: B's name on the x axis. Defaults to `"B"`.
        note: a line under the title (inputs used). Defaults to `""`.
    """
    z = matrix.to_numpy(dtype=np.float64)
    ya, xb = [str(i) for i in matrix.index], [str(c) for c in matrix.columns]
    fig = go.Figure(go.Heatmap(
        z=z, x=list(range(len(xb))), y=list(range(len(ya))), zmin=0.0, zmax=1.0,
        colorscale="Viridis", colorbar=dict(title="CKA", thickness=12),
        customdata=np.array([[f"{a} · {b}" for b in xb] for a in ya], dtype=object),
        hovertemplate="%{customdata}<br>CKA %{z:.3f}<extra></extra>", hoverongaps=False))
    if z.size and np.isfinite(z).any():
        safe = np.where(np.isfinite(z), z, -1.0)
        # On a tie (a Flatten equals its input up to a reshape) the same-named layer wins.
        best = [next((j for j in np.flatnonzero(r >= r.max() - 1e-9) if xb[j] == ya[i]),
                     int(r.argmax())) for i, r in enumerate(safe)]
        rows = [i for i in range(len(ya)) if safe[i, best[i]] >= 0]
        fig.add_trace(go.Scatter(
            x=[int(best[i]) for i in rows], y=rows, mode="markers",
            marker=dict(size=5 if len(ya) > 40 else 8, color="white",
                        line=dict(color="#222", width=1)),
            name=f"best match in {name_b}", hoverinfo="skip", showlegend=True))
    apply_template(fig, title=title + (f"<br><sup>{note}</sup>" if note else ""))
    n = max(len(ya), len(xb))
    size = int(min(1100, max(420, 14 * n + 200)))
    ticks_a = _ticks(ya)
    ticks_b = _ticks(xb)
    fig.update_layout(
        height=size,
        xaxis=dict(title=f"{name_b} layers", tickvals=ticks_b, tickangle=-60,
                   ticktext=[_short(xb[i]) for i in ticks_b], showgrid=False, zeroline=False),
        yaxis=dict(title=f"{name_a} layers", tickvals=ticks_a, autorange="reversed",
                   ticktext=[_short(ya[i]) for i in ticks_a], showgrid=False, zeroline=False,
                   scaleanchor="x" if len(ya) == len(xb) else None),
        legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
        margin=dict(l=60, r=20, t=80, b=60))
    return fig


def _ticks(names: list[str], most: int = 40) -> list[int]:
    step = max(1, -(-len(names) // most))
    return list(range(0, len(names), step))


def weight_change_figure(frame: pd.DataFrame, *, title: str = "Weight change per layer",
                         note: str = "") -> go.Figure:
    """Relative change ||B - A|| / ||A|| (log axis) and cosine between A and B, by depth.

    Args:
        frame: `insight.compare.weights.weight_changes` (layer, depth, params,
            relative_change, cosine).
        title: the figure title.
        note: a line under the title. Defaults to `""`.
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        row_heights=[0.6, 0.4])
    finite = frame[np.isfinite(frame.relative_change.astype(float))]
    rel = finite.relative_change.astype(float).clip(lower=1e-12)
    hover = [f"{r.layer}<br>{int(r.params):,} params" for r in finite.itertuples()]
    fig.add_trace(go.Scatter(
        x=finite.depth, y=rel, mode="lines+markers", name="relative change",
        marker=dict(color=COLORWAY[0], size=7), line=dict(color=COLORWAY[0], width=1),
        customdata=hover, hovertemplate="%{customdata}<br>‖B−A‖/‖A‖ %{y:.3g}<extra></extra>"),
        row=1, col=1)
    cos = frame[np.isfinite(frame.cosine.astype(float))]
    fig.add_trace(go.Scatter(
        x=cos.depth, y=cos.cosine, mode="lines+markers", name="cosine",
        marker=dict(color=COLORWAY[1], size=7), line=dict(color=COLORWAY[1], width=1),
        customdata=list(cos.layer),
        hovertemplate="%{customdata}<br>cosine %{y:.3f}<extra></extra>"), row=2, col=1)
    skipped = int(len(frame) - len(finite))
    unchanged = int((finite.relative_change.astype(float) == 0).sum())
    if unchanged:
        note = (note + " · " if note else "") + \
            f"{unchanged} layer{'s' * (unchanged != 1)} unchanged (0, drawn at 1e-12)"
    if skipped:
        note = (note + " · " if note else "") + \
            f"{skipped} layer{'s' * (skipped != 1)} of different shapes not plotted"
    apply_template(fig, title=title + (f"<br><sup>{note}</sup>" if note else ""))
    ticks = frame.sort_values("depth")
    fig.update_layout(height=520, showlegend=False, margin=dict(l=70, r=20, t=80, b=90))
    fig.update_yaxes(type="log", title_text="‖B−A‖ / ‖A‖", row=1, col=1)
    fig.update_yaxes(title_text="cosine", range=[min(-0.05, float(cos.cosine.min()) - 0.05)
                                                 if len(cos) else -0.05, 1.05], row=2, col=1)
    step = max(1, -(-len(ticks) // 30))
    fig.update_xaxes(tickvals=list(ticks.depth)[::step],
                     ticktext=[_short(s, 20) for s in ticks.layer][::step], tickangle=-45,
                     row=2, col=1)
    return e_notation(fig)


def confusion_figure(counts: pd.DataFrame, *, title: str = "A's predictions vs B's",
                     name_a: str = "A", name_b: str = "B") -> go.Figure:
    """Counts of (A's class, B's class) as a heatmap; the diagonal is where they agree.

    Args:
        counts: `insight.compare.predictions.confusion_between` (rows A, columns B).
        title: the figure title.
        name_a: A's name. Defaults to `"A"`.
        name_b: B's name. Defaults to `"B"`.
    """
    z = counts.to_numpy()
    labels_a, labels_b = [str(i) for i in counts.index], [str(c) for c in counts.columns]
    shown = np.where(z > 0, z, np.nan).astype(float)
    fig = go.Figure(go.Heatmap(
        z=np.log10(shown), x=labels_b, y=labels_a, colorscale="Blues", showscale=False,
        customdata=z, text=np.where(z > 0, z.astype(str), ""), texttemplate="%{text}",
        hovertemplate=f"{name_a}: %{{y}}<br>{name_b}: %{{x}}<br>%{{customdata}} inputs"
                      "<extra></extra>", hoverongaps=False))
    apply_template(fig, title=title)
    size = int(min(700, max(360, 34 * len(labels_a) + 160)))
    fig.update_layout(height=size, xaxis=dict(title=f"{name_b} predicts", type="category",
                                              showgrid=False),
                      yaxis=dict(title=f"{name_a} predicts", type="category",
                                 autorange="reversed", showgrid=False))
    return fig
