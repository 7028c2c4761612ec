"""The projector's scatter: every point, WebGL in 2D, coloured by any metadata column.

Example:

>>> import pandas as pd
>>> coords = pd.DataFrame({"x": [0.0, 1.0, 2.0], "y": [1.0, 0.0, 1.0]})
>>> meta = pd.DataFrame({"label": ["a", "b", "a"]})
>>> fig = projection_figure(coords, meta, color="label", title="demo")
>>> [t.name for t in fig.data], fig.data[0].type
(['a', 'b'], 'scattergl')
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from insight.errors import UsageError
from insight.figures.template import COLORWAY, apply_template, e_notation
from insight.patterns import user_regex

__all__ = ["projection_figure", "axis_titles", "search_mask", "MAX_CATEGORIES",
           "HOVER_TEXT_ROWS"]

MAX_CATEGORIES = 30  # beyond this a column is coloured as "other" after its top categories
HOVER_TEXT_ROWS = 20_000  # above this, hover carries numbers only (see `_hover`)


def search_mask(meta: pd.DataFrame, query: str, *, regex: bool = False) -> np.ndarray:
    """Rows where any metadata value contains `query` (case-insensitive), or matches it as a
    regular expression.

    Raises:
        UsageError: an invalid regular expression.
    """
    if not query:
        return np.zeros(len(meta), dtype=bool)
    mask = np.zeros(len(meta), dtype=bool)
    # A regex runs on RE2 (linear time), never through pandas' `str.contains`, whose `re`
    # backtracks exponentially on patterns such as `(a+)+$`.
    pattern = user_regex(query, "search", ignore_case=True) if regex else None
    for col in meta.columns:
        text = meta[col].astype(str)
        if pattern is None:
            mask |= text.str.contains(query, case=False, regex=False).to_numpy()
        else:
            mask |= np.fromiter((pattern.search(t) is not None for t in text), bool, len(text))
    return mask


def _hover(meta: pd.DataFrame, color: str | None) -> tuple[np.ndarray, str]:
    """Per-point hover data and template. Up to `HOVER_TEXT_ROWS` points every metadata column
    (as text) shows; above, only numbers travel (a compact binary array, not 100,000 strings
    per column) and a categorical colour shows through its trace name."""
    cols = list(meta.columns)[:6]
    index = np.arange(len(meta))[:, None]
    if len(meta) <= HOVER_TEXT_ROWS:
        data = np.hstack([index, meta[cols].astype(str).to_numpy()]) if cols else index
        lines = ["point %{customdata[0]}"] + [f"{c}: %{{customdata[{i + 1}]}}"
                                              for i, c in enumerate(cols)]
        return data, "<br>".join(lines) + "<extra></extra>"
    numeric = [c for c in cols if pd.api.types.is_numeric_dtype(meta[c])
               and not pd.api.types.is_bool_dtype(meta[c])]
    index = index.astype(np.float32)  # exact up to 16M points; half the bytes of float64
    data = np.hstack([index, meta[numeric].to_numpy(dtype=np.float32)]) if numeric else \
        index
    lines = ["point %{customdata[0]}"] + [f"{c}: %{{customdata[{i + 1}]:.4~g}}"
                                          for i, c in enumerate(numeric)]
    if color is not None and color not in numeric:
        lines.append(f"{color}: %{{fullData.name}}")
    return data, "<br>".join(lines) + "<extra></extra>"


def _trace(coords: pd.DataFrame, idx: np.ndarray, **kw) -> go.BaseTraceType:
    if "z" in coords:
        return go.Scatter3d(x=coords["x"].to_numpy()[idx], y=coords["y"].to_numpy()[idx],
                            z=coords["z"].to_numpy()[idx], mode="markers", **kw)
    return go.Scattergl(x=coords["x"].to_numpy()[idx], y=coords["y"].to_numpy()[idx],
                        mode="markers", **kw)


def projection_figure(coords: pd.DataFrame, meta: pd.DataFrame, *, color: str | None = None,
                      search: str = "", regex: bool = False,
                      highlight: Sequence[int] = (), title: str = "Projection") -> go.Figure:
    """Scatter every projected point; 3-D when `coords` has a `z` column.

    Args:
        coords: `x`, `y` (and `z`), one row per point (from `insight.project`).
        meta: one row per point; its columns show on hover (above `HOVER_TEXT_ROWS` points
            the numeric ones and the colour; the rest stay one click away).
        color: a metadata column: categorical columns get one trace (and legend entry) per
            value, numeric ones a colour scale. Defaults to `None` (one colour).
        search: highlight rows whose metadata contains it; the rest fade. Defaults to `""`.
        regex: treat `search` as a regular expression. Defaults to `False`.
        highlight: point indices to ring (a selected point and its neighbours).
            Defaults to `()`.
        title: the figure title. Defaults to `"Projection"`.
    """
    if color is not None and color not in meta.columns:
        raise UsageError(f"No metadata column {color!r}. Columns are: "
                         f"{', '.join(map(str, meta.columns)) or 'none'}.", "",
                         f"color={color!r}")
    n = len(coords)
    three_d = "z" in coords
    size = 3 if three_d or n > HOVER_TEXT_ROWS else 5  # dense clouds: less overdraw
    matched = search_mask(meta, search, regex=regex) if search else None
    opacity = 0.75 if matched is None else np.where(matched, 0.95, 0.08)
    custom, template = _hover(meta, color)
    fig = apply_template(go.Figure(), title=title)
    everyone = np.arange(n)
    column = meta[color] if color is not None else None
    numeric = column is not None and pd.api.types.is_numeric_dtype(column) and \
        not pd.api.types.is_bool_dtype(column)
    if column is None or numeric:
        marker = dict(size=size, color=COLORWAY[0] if column is None else column.to_numpy(),
                      opacity=opacity if not three_d else 0.8)
        if numeric:
            marker.update(colorscale="Viridis", showscale=True,
                          colorbar=dict(title=dict(text=str(color)), thickness=12))
        fig.add_trace(_trace(coords, everyone, marker=marker, customdata=custom,
                             hovertemplate=template, name="points", showlegend=False))
    else:
        order, members = _categories(column)
        for i, (value, idx) in enumerate(zip(order, members, strict=True)):
            op = opacity if np.isscalar(opacity) else opacity[idx]
            fig.add_trace(_trace(coords, idx, name=value, customdata=custom[idx],
                                 hovertemplate=template,
                                 marker=dict(size=size, color=COLORWAY[i % len(COLORWAY)],
                                             opacity=op if not three_d else 0.8)))
    if len(highlight):
        idx = np.asarray(highlight, dtype=int)
        ring = dict(size=size + 9, color="rgba(0,0,0,0)", line=dict(color="#111", width=2))
        if three_d:
            ring = dict(size=size + 4, color="#111", symbol="circle-open")
        fig.add_trace(_trace(coords, idx, name="selected + neighbours", marker=ring,
                             customdata=custom[idx], hovertemplate=template))
    fig.update_layout(height=620, legend=dict(itemsizing="constant"), dragmode="zoom")
    titles = axis_titles(coords)
    pca = coords.attrs.get("method") == "pca"  # only PCA's coordinates have a meaning
    if three_d:
        fig.update_scenes(**{f"{a}axis": dict(title=dict(text=t), showticklabels=pca)
                             for a, t in zip("xyz", titles, strict=False)})
    else:
        fig.update_layout(xaxis=dict(showticklabels=pca, title=titles[0]),
                          yaxis=dict(showticklabels=pca, title=titles[1]))
    return e_notation(fig)


def _categories(column: pd.Series) -> tuple[list[str], list[np.ndarray]]:
    """The trace names of a categorical colour (the `MAX_CATEGORIES` most frequent values in
    natural order, then `"other"` for the rest) and each one's point indices, ascending.

    One pass over the points (factorize, then a stable sort by trace), not one string
    comparison over every point per category: 31 categories of 100,000 points took a
    second that way.

    >>> order, members = _categories(pd.Series(["b", "a", "b", "10", "9", None]))
    >>> order, [m.tolist() for m in members]
    (['9', '10', 'a', 'b', 'other'], [[4], [3], [1], [0, 2], [5]])
    """
    values = column.astype(str)  # missing values stay missing (pandas >= 3)
    counts = values.value_counts()
    keep = list(counts.index[:MAX_CATEGORIES])
    order = sorted(keep, key=_natural)
    trace_of = {value: i for i, value in enumerate(order)}
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    point_trace = np.array([trace_of.get(u, -1) for u in uniques], dtype=np.intp)[codes]
    rest = point_trace < 0
    if rest.any():  # the rarer values, and missing ones, share one "other" trace
        if "other" not in trace_of:
            trace_of["other"] = len(order)
            order.append("other")
        point_trace[rest] = trace_of["other"]
    by_trace = np.argsort(point_trace, kind="stable")
    bounds = np.searchsorted(point_trace[by_trace], np.arange(len(order) + 1))
    return order, [by_trace[bounds[i]:bounds[i + 1]] for i in range(len(order))]


def axis_titles(coords: pd.DataFrame) -> list[str]:
    """Axis titles for projected coordinates: `"PC1 (34.2% of variance)"` for PCA (from
    `coords.attrs["explained_variance"]`), `"UMAP 1"`, `"t-SNE 1"`, else `"x"`.

    >>> frame = pd.DataFrame({"x": [0.0], "y": [1.0]})
    >>> frame.attrs.update(method="pca", explained_variance=[0.342, 0.1])
    >>> axis_titles(frame)
    ['PC1 (34.2% of variance)', 'PC2 (10.0% of variance)']
    """
    axes = [c for c in ("x", "y", "z") if c in coords.columns]
    method = coords.attrs.get("method")
    if method == "pca":
        ratios = list(coords.attrs.get("explained_variance", []))
        return [f"PC{i + 1}" + (f" ({ratios[i]:.1%} of variance)" if i < len(ratios) else "")
                for i in range(len(axes))]
    name = {"umap": "UMAP", "tsne": "t-SNE"}.get(str(method))
    return [f"{name} {i + 1}" if name else a for i, a in enumerate(axes)]


def _natural(value: str) -> tuple:
    return (0, float(value), "") if _is_number(value) else (1, 0.0, value)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
