"""Figures of what a model's layers output: histograms by depth, feature maps, unit heatmaps,
example inputs and the examples that drive one unit.

Builders take plain arrays and frames (computed by `insight.probe.stats` and
`insight.probe.capture`) and return `go.Figure`s with the shared template; they run no model.

Example:

>>> import numpy as np
>>> hists = {"conv1": (np.array([1, 4, 2]), np.linspace(0, 1, 4)),
...          "dense": (np.array([5, 0, 1]), np.linspace(-1, 1, 4))}
>>> fig = ridge_figure(hists)
>>> [t.name for t in fig.data]
['conv1', 'dense']
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from insight.figures.template import COLORWAY, apply_template, e_notation

__all__ = ["ridge_figure", "feature_maps_figure", "matrix_figure", "image_figure",
           "image_grid_figure", "values_figure", "message_figure", "tile", "RIDGE_HEIGHT",
           "RIDGE_ROW_PX"]

_FLAGGED = COLORWAY[3]
_HEAT = "Viridis"


def message_figure(text: str, *, title: str, height: int = 200, wrap: int = 80) -> go.Figure:
    """A figure holding only a message (or a short text), wrapped at `wrap` characters."""
    fig = apply_template(go.Figure(), title=title)
    lines = textwrap.wrap(text, wrap)
    height = max(height, 18 * len(lines) + 120)
    fig.add_annotation(text="<br>".join(lines), x=0, y=1, xref="paper",
                       yref="paper", showarrow=False, align="left", xanchor="left",
                       yanchor="top", font=dict(color="#555"))
    fig.update_layout(height=height, xaxis_visible=False, yaxis_visible=False,
                      margin=dict(l=10, r=10))
    return fig


RIDGE_HEIGHT = 900  # CSS pixels the rows of a ridge plot share, up to ...
RIDGE_ROW_PX = (18, 46)  # ... each row at least 18 and at most 46 pixels high


def ridge_figure(histograms: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
                 flagged: Sequence[str] = (), title: str = "Activation histograms by depth",
                 labels: Mapping[str, str] | None = None,
                 notes: Mapping[str, str] | None = None,
                 ranges: Mapping[str, tuple[float, float]] | None = None) -> go.Figure:
    """One filled histogram per row, first row on top, each on its own scale: its height
    scaled to its peak (the square root of the counts, so a spike of ReLU zeros leaves the
    tails visible) and its width from its smallest to its largest value, which is written at
    the right. Layers of very different ranges (an input in 0-255, a late layer in 1e-12) all
    show their shape.

    Rows are `RIDGE_ROW_PX` pixels high, sharing `RIDGE_HEIGHT` when there are few: a long
    figure (every layer of a big model) is meant for a scrolling frame.

    Args:
        histograms: `{layer: (counts, edges)}` in depth order, as in
            `insight.probe.stats.ActivationStats.histograms`; the keys name the traces.
        flagged: rows drawn in red (dead or saturated). Defaults to `()`.
        title: the figure title. Defaults to `"Activation histograms by depth"`.
        labels: `{layer: row label}` (a block's name); HTML allowed. Defaults to the keys.
        notes: `{layer: a line for the hover}`. Defaults to none.
        ranges: `{layer: (min, max)}`, the exact extremes written at the right (the bins
            reach a little beyond them). Defaults to the extent of the non-empty bins.
    """
    fig = go.Figure()
    names = list(histograms)
    labels, notes, exact = labels or {}, notes or {}, ranges or {}
    n = len(names)
    extents = []
    for i, name in enumerate(names):
        counts, edges = _trimmed(*histograms[name])
        lo, hi = float(edges[0]), float(edges[-1])
        extents.append(exact.get(name, (lo, hi)))
        root = np.sqrt(counts)  # a square root, so a spike at 0 leaves the tails visible
        peak = root.max() if root.size and root.max() > 0 else 1.0
        height = root / peak * 0.9
        base = float(n - 1 - i)
        xs = np.repeat(edges, 2)[1:-1]  # a step outline over the bins
        x = np.concatenate([[edges[0]], xs, [edges[-1]]])
        y = base + np.concatenate([[0.0], np.repeat(height, 2), [0.0]])
        color = _FLAGGED if name in flagged else COLORWAY[0]
        share = counts / max(counts.sum(), 1.0)
        note = f"<br>{notes[name]}" if name in notes else ""
        fig.add_trace(go.Scatter(
            x=(x - lo) / (hi - lo), y=y, mode="lines", fill="toself", name=name,
            line=dict(color=color, width=1), fillcolor=_alpha(color, 0.35), showlegend=False,
            hoveron="points",
            customdata=np.stack([x, np.concatenate([[0.0], np.repeat(share, 2), [0.0]])], -1),
            hovertemplate=f"<b>{name}</b>{note}<br>value %{{customdata[0]:.3g}}<br>"
                          "%{customdata[1]:.1%} of values<extra></extra>",
        ))
    apply_template(fig, title=title)
    row_px = float(np.clip(RIDGE_HEIGHT / max(n, 1), *RIDGE_ROW_PX))
    small = row_px < 26
    for i, (lo, hi) in enumerate(extents):  # each row's own range, right of it
        fig.add_annotation(x=1.0, xref="paper", xanchor="left", y=n - 1 - i + 0.3, yref="y",
                           text="NaN" if np.isnan([lo, hi]).any() else
                           f"{_number(lo)} … {_number(hi)}", showarrow=False,
                           font=dict(size=10 if small else 11, color="#555"))
    fig.update_layout(
        height=int(row_px * n + 150), hovermode="closest", margin=dict(t=100, r=130, b=60),
        xaxis=dict(title="each row from its smallest value to its largest (written at the right)",
                   range=[-0.01, 1.01], showticklabels=False, showgrid=False, zeroline=False),
        yaxis=dict(tickvals=[n - 1 - i + 0.3 for i in range(n)],
                   ticktext=[labels.get(name, name) for name in names], showgrid=False,
                   zeroline=False, range=[-0.2, n], automargin=True,
                   tickfont=dict(size=11 if small else 13)),
    )
    return fig


def _trimmed(counts: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bins from the first to the last that holds a value (all of them when none does),
    as float64; a range of one value is widened so that it has a width."""
    counts = np.asarray(counts, np.float64)
    edges = np.asarray(edges, np.float64)
    full = np.flatnonzero(counts)
    if full.size:
        counts, edges = counts[full[0]:full[-1] + 1], edges[full[0]:full[-1] + 2]
    if not edges[-1] > edges[0]:
        edges = edges[0] + np.linspace(-0.5, 0.5, len(edges))
    return counts, edges


def _number(v: float) -> str:
    """A number in three significant digits, small ones as 1e-12 (never SI's "1p")."""
    text = f"{v:.3g}"
    return "0" if text in ("0", "-0") else text.replace("e-0", "e-").replace("e+0", "e+")


def _alpha(hex_color: str, a: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{a})"


def tile(planes: np.ndarray, cols: int, gap: int = 1, row_gap: int | None = None
         ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Lay `planes` (n, h, w) or (n, h, w, 3) out on a grid, NaN between them (`row_gap`
    between rows, `gap` if not given).

    Returns:
        `(canvas, origins)`: the tiled array and each plane's top-left `(row, col)`.

    >>> canvas, origins = tile(np.ones((3, 2, 2)), cols=2)
    >>> canvas.shape, origins
    ((5, 5), [(0, 0), (0, 3), (3, 0)])
    """
    n, h, w = planes.shape[:3]
    rows = -(-n // cols)
    row_gap = gap if row_gap is None else row_gap
    shape = (rows * (h + row_gap) - row_gap, cols * (w + gap) - gap, *planes.shape[3:])
    canvas = np.full(shape, np.nan, np.float64)
    origins = []
    for i in range(n):
        r, c = divmod(i, cols) if cols else (0, 0)
        r0, c0 = r * (h + row_gap), c * (w + gap)
        canvas[r0:r0 + h, c0:c0 + w] = planes[i]
        origins.append((r0, c0))
    return canvas, origins


def _image_axes(fig: go.Figure, height: int) -> None:
    fig.update_layout(height=height, plot_bgcolor="white")
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")


def feature_maps_figure(maps: np.ndarray, *, title: str, max_channels: int = 32,
                        cols: int = 8) -> go.Figure:
    """The channels of one example's conv output as a grid of heatmaps on one colour scale
    (a channel that stays dark is silent for this example).

    Args:
        maps: `(height, width, channels)`.
        title: the figure title.
        max_channels: channels shown, the first ones. Defaults to `32`.
        cols: grid columns. Defaults to `8`.
    """
    maps = np.asarray(maps, np.float64)
    channels = maps.shape[-1]
    shown = min(channels, max_channels)
    planes = np.moveaxis(maps[..., :shown], -1, 0)
    cols = min(cols, shown)
    h, w = planes.shape[1:3]
    gap = max(1, round(max(h, w) / 6))
    canvas, origins = tile(planes, cols, gap)
    channel = np.full(canvas.shape, -1, np.int64)
    for i, (r0, c0) in enumerate(origins):
        channel[r0:r0 + h, c0:c0 + w] = i
    fig = go.Figure(go.Heatmap(
        z=canvas, customdata=channel, colorscale=_HEAT, hoverongaps=False,
        colorbar=dict(title=dict(text="value"), thickness=12),
        hovertemplate="channel %{customdata}<br>value %{z:.3g}<extra></extra>",
    ))
    for i, (r0, c0) in enumerate(origins):
        fig.add_annotation(x=c0 - 0.5, y=r0 - 0.5, text=str(i), showarrow=False,
                           xanchor="left", yanchor="bottom", font=dict(size=10, color="#555"))
    more = f" (first {shown} of {channels})" if shown < channels else ""
    apply_template(fig, title=f"{title}<br><sup>{channels} channels{more}, "
                              f"{h}×{w} each, one colour scale</sup>")
    rows = len(origins) // cols + (len(origins) % cols > 0)
    _image_axes(fig, height=max(260, min(720, 110 * rows + 120)))
    fig.update_layout(margin=dict(t=80))
    return e_notation(fig)


def matrix_figure(z: np.ndarray, *, title: str, y_labels: Sequence[str], x_title: str,
                  y_title: str, highlight: int | None = None, note: str = "") -> go.Figure:
    """A heatmap of rows (examples or positions) by units, one row optionally outlined."""
    z = np.asarray(z, np.float64)
    labels = [str(s) for s in y_labels]
    fig = go.Figure(go.Heatmap(
        z=z, y=list(range(len(labels))), colorscale=_HEAT, customdata=np.repeat(
            np.array(labels, dtype=object)[:, None], z.shape[1], axis=1),
        colorbar=dict(title=dict(text="value"), thickness=12),
        hovertemplate=f"{y_title} %{{customdata}}<br>unit %{{x}}<br>value %{{z:.3g}}"
                      "<extra></extra>",
    ))
    if highlight is not None and 0 <= highlight < len(labels):
        fig.add_shape(type="rect", x0=-0.5, x1=z.shape[1] - 0.5, y0=highlight - 0.5,
                      y1=highlight + 0.5, line=dict(color=_FLAGGED, width=2))
    step = max(1, len(labels) // 16)
    apply_template(fig, title=title + (f"<br><sup>{note}</sup>" if note else ""))
    fig.update_layout(
        height=max(300, min(560, 8 * len(labels) + 160)), margin=dict(t=80),
        xaxis=dict(title=x_title, showgrid=False),
        yaxis=dict(title=y_title, autorange="reversed", showgrid=False,
                   tickvals=list(range(0, len(labels), step)), ticktext=labels[::step]),
    )
    return e_notation(fig)


def _gray(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, np.float64)
    return img.mean(-1) if img.ndim == 3 else img


def image_figure(img: np.ndarray, *, title: str) -> go.Figure:
    """One input image: grayscale as a heatmap, RGB as an image."""
    img = np.asarray(img, np.float64)
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        fig = go.Figure(go.Image(z=_to_rgb(img[..., :3])))
    else:
        fig = go.Figure(go.Heatmap(z=_gray(img), colorscale="Greys", reversescale=False,
                                   showscale=False,
                                   hovertemplate="(%{y}, %{x}) %{z:.3g}<extra></extra>"))
    apply_template(fig, title=title)
    _image_axes(fig, height=300)
    fig.update_layout(margin=dict(l=10, r=10, t=60, b=10))
    return fig


def _to_rgb(img: np.ndarray) -> np.ndarray:
    lo, hi = float(np.nanmin(img)), float(np.nanmax(img))
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.clip((img - lo) * scale, 0, 255).astype(np.uint8)


def image_grid_figure(images: np.ndarray, captions: Sequence[str], *, title: str,
                      cols: int = 4) -> go.Figure:
    """Small grayscale images in a row (or grid), each with a caption underneath."""
    planes = np.stack([_gray(im) for im in images]) if len(images) else np.zeros((0, 1, 1))
    if not len(planes):
        return message_figure("No examples.", title=title)
    # each image on its own 0-1 scale, so faint and bright examples both read
    lo = planes.reshape(len(planes), -1).min(1)[:, None, None]
    hi = planes.reshape(len(planes), -1).max(1)[:, None, None]
    planes = (planes - lo) / np.where(hi > lo, hi - lo, 1.0)
    cols = min(cols, len(planes))
    h, w = planes.shape[1:]
    gap = max(1, round(max(h, w) / 4))
    canvas, origins = tile(planes, cols, gap, row_gap=max(2, round(h * 0.6)))
    fig = go.Figure(go.Heatmap(z=canvas, colorscale="Greys", showscale=False,
                               hoverongaps=False, hoverinfo="skip"))
    for (r0, c0), text in zip(origins, captions, strict=True):
        fig.add_annotation(x=c0 + (w - 1) / 2, y=r0 + h - 0.5, text=text, showarrow=False,
                           xanchor="center", yanchor="top", font=dict(size=11))
    apply_template(fig, title=title)
    rows = -(-len(planes) // cols)
    _image_axes(fig, height=max(240, 190 * rows + 100))
    fig.update_layout(margin=dict(l=10, r=10, t=60 + 14 * title.count("<br>"), b=40))
    return fig


def values_figure(values: Sequence[float], labels: Sequence[str], *, title: str,
                  x_title: str = "value", hover: Sequence[str] | None = None,
                  horizontal: bool = True) -> go.Figure:
    """Bars of one value per labelled item (features, tokens, examples)."""
    values = np.asarray(values, np.float64)
    signed = bool((values < 0).any())
    colors = [COLORWAY[3] if v >= 0 else COLORWAY[0] for v in values] if signed \
        else COLORWAY[0]
    labels = [str(s) for s in labels]
    text = list(hover) if hover is not None else labels
    bar = go.Bar(x=values, y=labels, orientation="h") if horizontal else \
        go.Bar(x=labels, y=values)
    bar.update(marker_color=colors, customdata=text,
               hovertemplate="%{customdata}<br>%{" + ("x" if horizontal else "y") +
                             ":.3g}<extra></extra>")
    fig = apply_template(go.Figure(bar), title=title)
    if horizontal:
        fig.update_layout(height=max(240, 26 * len(labels) + 120), xaxis_title=x_title,
                          yaxis=dict(type="category", autorange="reversed", automargin=True))
    else:
        fig.update_layout(height=340, yaxis_title=x_title,
                          xaxis=dict(type="category", tickangle=-45, automargin=True))
    return e_notation(fig)
