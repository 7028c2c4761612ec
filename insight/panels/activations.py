"""The Activations page's panels: what the layers output.

Statistics (the table, the histograms by depth, the top examples of a unit) read the first
`STATS_EXAMPLES` examples of the model's data; a dense layer's heatmap `HEATMAP_EXAMPLES` rows
around the chosen example. Shared helpers are in `insight.panels.probe`. Importing this
module registers the panels (`insight.panels` does it on first use).

Example:

>>> from insight.panels import build_panel, PanelContext
>>> build_panel("activation_table", PanelContext(loaded)).columns[:3].tolist()  # doctest: +SKIP
['layer', 'flag', 'dead_fraction']
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from insight.data import Dataset
from insight.errors import UsageError
from insight.figures.activations import (
    feature_maps_figure,
    image_figure,
    image_grid_figure,
    matrix_figure,
    message_figure,
    ridge_figure,
    values_figure,
)
from insight.panels.probe import (
    EXAMPLE,
    LAYER,
    USES,
    check_probing,
    checked_example,
    data_source,
    example_label,
    layer_path,
    main_input,
    probe_dataset,
    token_labels,
    token_text,
    vocabulary,
)
from insight.panels.registry import Panel, PanelContext, Param, register
from insight.probe.capture import activations
from insight.probe.stats import ActivationStats, activation_stats

__all__ = ["STATS_EXAMPLES", "HEATMAP_EXAMPLES", "DEAD_LIMIT", "SATURATED_LIMIT", "layer_units"]

STATS_EXAMPLES = 2048  # examples the statistics and top-example searches read
HEATMAP_EXAMPLES = 64  # rows of a dense layer's unit heatmap
DEAD_LIMIT = 0.5  # a layer with more dead units than this is flagged
SATURATED_LIMIT = 0.5  # ... or more saturated values (rows, for softmax)


def layer_units(table: pd.DataFrame, layer: str) -> int:
    """How many units (channels) `layer` has, from an `activation_table`."""
    return int(table.loc[table["layer"] == layer, "units"].iloc[0])


def _subset(ds: Dataset) -> Dataset:
    return ds.take(slice(0, STATS_EXAMPLES)) if len(ds) > STATS_EXAMPLES else ds


def _stats(ctx: PanelContext) -> tuple[ActivationStats, Dataset]:
    """Shared by the table and the ridge plot (memoised by the UI through `ctx.cached`)."""
    check_probing(ctx, "activations")
    ds = _subset(probe_dataset(ctx))
    stats = ctx.cached(f"probe:stats:{STATS_EXAMPLES}",
                       lambda: activation_stats(ctx.loaded, ds, batch_size=128))
    return stats, ds


def _flag(row: Any) -> str:
    flags = []
    if row.dead_fraction > DEAD_LIMIT:
        flags.append(f"dead {row.dead_fraction:.0%}")
    if row.saturated_fraction > SATURATED_LIMIT:  # NaN (no saturating activation) is False
        flags.append(f"saturated {row.saturated_fraction:.0%}")
    return ", ".join(flags)


def _activation_table(ctx: PanelContext) -> pd.DataFrame:
    """Problem indicators first (flag, dead, saturated), the layer's identity last."""
    stats, _ = _stats(ctx)
    t = stats.table
    frame = t[["layer", "dead_fraction", "saturated_fraction", "zero_fraction", "mean", "std",
               "class", "shape", "units"]].copy()
    frame.insert(1, "flag", [_flag(r) for r in t.itertuples()])
    frame.insert(5, "histogram", [  # square roots, as in the ridge plot
        (np.sqrt(counts) / max(float(np.sqrt(counts.max())), 1.0)).round(4).tolist()
        for counts, _ in (stats.histograms[p] for p in t["layer"])])
    frame["shape"] = [s.replace("(None, ", "(") for s in frame["shape"]]  # per example
    return frame


def _activation_ridge(ctx: PanelContext):
    stats, ds = _stats(ctx)
    flagged = [r.layer for r in stats.table.itertuples() if _flag(r)]
    return ridge_figure(stats.histograms, flagged=flagged,
                        title=f"Activation histograms by depth<br><sup>{stats.n_examples:,} "
                              f"examples of {data_source(ds)}<br>height ∝ √count, each row "
                              "scaled to its peak; red: flagged layers</sup>")


def _example_input(ctx: PanelContext, example: int):
    ds = probe_dataset(ctx)
    i = checked_example(ds, example)
    name, arr, kind = main_input(ctx, ds.take([i]).x)
    title = f"Example {i}: {example_label(ds, i)}"
    if kind == "image":
        return image_figure(arr[0], title=f"{title}<br><sup>input {name!r}</sup>")
    if kind == "tokens":
        return message_figure(token_text(arr[0], vocabulary(ctx), limit=400) or "(empty)", wrap=30,
                              title=f"{title}<br><sup>tokens of input {name!r}</sup>")
    if kind == "vector":
        return values_figure(arr[0], [f"{name}[{j}]" for j in range(arr.shape[1])],
                             title=f"{title}<br><sup>input {name!r}</sup>")
    return message_figure(f"Input {name!r} has shape {arr.shape[1:]}: not drawn.", title=title)


def _layer_activations(ctx: PanelContext, layer: str, example: int):
    check_probing(ctx, "activations")
    ds = probe_dataset(ctx)
    i, path = checked_example(ds, example), layer_path(ctx, layer)
    act = activations(ctx.loaded, ds.take([i]).x, [path])[path][0]
    if act.ndim >= 4:  # volumes: average the extra spatial axes away
        act = act.reshape(act.shape[0], act.shape[1], -1, act.shape[-1]).mean(2)
    if act.ndim == 3:
        return feature_maps_figure(act, title=f"{path}: feature maps of example {i}")
    if act.ndim == 2:
        _, arr, kind = main_input(ctx, ds.take([i]).x)
        labels = token_labels(arr[0], vocabulary(ctx)) if kind == "tokens" else []
        rows = act[: len(labels)] if labels else act
        labels = labels or [str(p) for p in range(len(act))]
        return matrix_figure(rows[:, :512], title=f"{path}: positions × units of example {i}",
                             y_labels=labels, x_title="unit", y_title="position",
                             note=_units_note(act.shape[-1]))
    start = (i // HEATMAP_EXAMPLES) * HEATMAP_EXAMPLES
    stop = min(len(ds), start + HEATMAP_EXAMPLES)
    acts = activations(ctx.loaded, ds.take(slice(start, stop)).x, [path])[path]
    acts = acts.reshape(len(acts), -1)
    return matrix_figure(acts[:, :512], title=f"{path}: units × examples {start}–{stop - 1}",
                         y_labels=[str(r) for r in range(start, stop)], x_title="unit",
                         y_title="example", highlight=i - start,
                         note=f"example {i} outlined" + _units_note(acts.shape[-1], ", "))


def _units_note(units: int, sep: str = "") -> str:
    return f"{sep}first 512 of {units:,} units" if units > 512 else ""


def _top_examples(ctx: PanelContext, layer: str, unit: int, k: int):
    check_probing(ctx, "activations")
    ds = _subset(probe_dataset(ctx))
    path = layer_path(ctx, layer)
    scores = []
    for xb, _ in ds.batches(256):
        a = activations(ctx.loaded, xb, [path])[path]
        a = a.reshape(len(a), -1, a.shape[-1]) if a.ndim > 1 else a.reshape(len(a), 1, 1)
        if not 0 <= unit < a.shape[-1]:
            raise UsageError(f"Layer {path!r} has {a.shape[-1]} units: the unit must be from 0 "
                             f"to {a.shape[-1] - 1}.", "", f"unit={unit}")
        scores.append(a[..., unit].mean(1))
    score = np.concatenate(scores)
    top = np.argsort(-score, kind="stable")[: max(1, k)]
    dead = "<br>this unit is 0 for every example: a dead unit" if not score.any() else ""
    title = (f"Examples that activate {path} unit {unit} most<br><sup>top {len(top)} of "
             f"{len(ds):,} examples of {data_source(ds)}, by the unit's mean over positions"
             f"{dead}</sup>")
    name, arr, kind = main_input(ctx, ds.take(top).x)
    if kind == "image":
        captions = [f"#{i}" + ("" if ds.y is None else
                                f" · {example_label(ds, i).removeprefix('label ')}") +
                    f"<br>{score[i]:.3g}" for i in top]
        return image_grid_figure(arr, captions, title=title)
    vocab = vocabulary(ctx) if kind == "tokens" else None
    labels = [f"#{i}" + ("" if ds.y is None else
                         f" · {example_label(ds, i).removeprefix('label ')}") for i in top]
    if kind == "tokens":
        texts = [token_text(arr[j], vocab, 400) for j in range(len(top))]
        short = [f"{lab}: {token_text(arr[j], vocab, 26)}" for j, lab in enumerate(labels)]
        return values_figure(score[top], short, hover=texts, title=title,
                             x_title="mean activation")
    return values_figure(score[top], labels, title=title, x_title="mean activation")


register(Panel("activation_table", "Activation statistics", "table", _activation_table,
               uses=USES, description="Per-layer activation statistics with dead and "
                                      "saturated layers flagged, and a histogram each."))
register(Panel("activation_ridge", "Activation histograms by depth", "figure",
               _activation_ridge, uses=USES,
               description="One histogram of activation values per layer, first layer on top."))
register(Panel("example_input", "Example input", "figure", _example_input, (EXAMPLE,),
               uses=USES, description="One input example: image, tokens or features."))
register(Panel("layer_activations", "Layer activations", "figure", _layer_activations,
               (LAYER, EXAMPLE), uses=USES,
               description="Feature maps of a conv layer for one example, or a dense layer's "
                           "units across examples."))
register(Panel("top_examples", "Top examples of a unit", "figure", _top_examples,
               (LAYER, Param("unit", "int", 0, help="Unit (channel) index."),
                Param("k", "int", 8, help="How many examples.")), uses=USES,
               description="The examples that activate one unit most."))
