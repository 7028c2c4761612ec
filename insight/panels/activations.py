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
from insight.doctor.checks_probe import DEAD_INFO, SATURATED_LIMIT
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
from insight.panels.doctor import page_report
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

__all__ = ["STATS_EXAMPLES", "HEATMAP_EXAMPLES", "DEAD_LIMIT", "SATURATED_LIMIT", "RIDGE_ROWS",
           "RIDGE_BY", "RIDGE_FRAME", "layer_units", "finding_flag", "layer_flags", "ridge_rows"]

STATS_EXAMPLES = 2048  # examples the statistics and top-example searches read
HEATMAP_EXAMPLES = 64  # rows of a dense layer's unit heatmap
# The flags are the doctor's findings (`layer_flags`), at its limits.
DEAD_LIMIT = DEAD_INFO  # share of a ReLU layer's units dead for every example
RIDGE_ROWS = 48  # above this many layers the ridge plot shows blocks (by="auto")
RIDGE_BY = ("auto", "layer", "block")
RIDGE_FRAME = 1060  # pixels of the scrolling frame a page shows every layer's ridge row in


def layer_units(table: pd.DataFrame, layer: str) -> int:
    """How many units (channels) `layer` has, from an `activation_table`."""
    return int(table.loc[table["layer"] == layer, "units"].iloc[0])


def _subset(ds: Dataset) -> Dataset:
    return ds.take(slice(0, STATS_EXAMPLES)) if len(ds) > STATS_EXAMPLES else ds


def _stats(ctx: PanelContext) -> tuple[ActivationStats, Dataset]:
    """Shared by the table and the ridge plot (memoised by the UI through `ctx.cached`).
    `ctx.progress` hears of each batch (a stream's batches are read as they come)."""
    check_probing(ctx, "activations")
    ds = _subset(probe_dataset(ctx))
    stats = ctx.cached(f"probe:stats:{STATS_EXAMPLES}",
                       lambda: activation_stats(ctx.loaded, ds, batch_size=128,
                                                progress=ctx.progress))
    return stats, ds


def finding_flag(finding: Any) -> str:
    """A doctor finding about one layer in a few words, for the table's `flag` column:
    `"dead 7/16 units"`, `"saturated 80%"`, `"scale ×120"`, `"NaN/Inf"` (`""`: none of
    those)."""
    ev = finding.evidence
    if finding.check == "dead_units":
        return f"dead {int(ev['dead_units']):,}/{int(ev['units']):,} units"
    if finding.check == "saturated_units":
        return f"saturated {float(ev['saturated_fraction']):.0%}"
    if finding.check == "activation_scale":
        return f"scale ×{float(ev['ratio']):.3g} since {ev['from_layer']}"
    if finding.check == "activation_nan":
        return "NaN/Inf"
    return ""


def layer_flags(ctx: PanelContext) -> dict[str, str]:
    """`{layer: flag}` for the layers the doctor's activation checks found something in
    (`insight.panels.doctor.page_report`): the Activations page's verdicts are the doctor's."""
    flags: dict[str, list[str]] = {}
    for f in page_report(ctx, "activations").findings:
        text = finding_flag(f)
        if f.layer and text:
            flags.setdefault(f.layer, []).append(text)
    return {layer: ", ".join(texts) for layer, texts in flags.items()}


def _flags(ctx: PanelContext, table: pd.DataFrame) -> list[str]:
    flags = layer_flags(ctx)
    return [flags.get(layer, "") for layer in table["layer"]]


def _activation_table(ctx: PanelContext) -> pd.DataFrame:
    """Problem indicators first (flag, dead, saturated), the layer's identity last."""
    stats, _ = _stats(ctx)
    t = stats.table
    frame = t[["layer", "dead_fraction", "saturated_fraction", "zero_fraction", "mean", "std",
               "class", "shape", "units"]].copy()
    frame.insert(1, "flag", pd.array(_flags(ctx, t), dtype="string"))
    frame.insert(5, "histogram", [  # square roots, as in the ridge plot
        (np.sqrt(counts) / max(float(np.sqrt(counts.max())), 1.0)).round(4).tolist()
        for counts, _ in (stats.histograms[p] for p in t["layer"])])
    frame["shape"] = [s.replace("(None, ", "(") for s in frame["shape"]]  # per example
    # Numbers stay numbers (NaN: no saturating activation), so no cell reads "None".
    return frame.astype({c: "float64" for c in _FLOAT_COLUMNS} | {"units": "int64"})


_FLOAT_COLUMNS = ("dead_fraction", "saturated_fraction", "zero_fraction", "mean", "std")


def ridge_rows(ctx: PanelContext, layers: list[str], by: str = "auto"
               ) -> list[tuple[str, list[str]]]:
    """The rows of the ridge plot: `[(block id or layer, its layers in depth order)]`.

    `by="layer"`: one row per layer. `by="block"`: the repeating blocks of the model's layer
    graph (`insight.model.blocks.layer_blocks`: `block_3_*`, `conv2_block1_*`, nested models)
    collapsed to one row each, opened level by level while there are at most `RIDGE_ROWS`
    rows. `by="auto"`: blocks above `RIDGE_ROWS` layers, else layers.

    Raises:
        UsageError: an unknown `by`.
    """
    if by not in RIDGE_BY:
        raise UsageError(f"The ridge rows are by {', '.join(RIDGE_BY)}.", "", f"by={by!r}")
    if by == "layer" or (by == "auto" and len(layers) <= RIDGE_ROWS):
        return [(p, [p]) for p in layers]
    chains = _block_chains(ctx, layers)
    deepest = max((len(c) for c in chains.values()), default=0)
    for depth in range(deepest, -1, -1):
        rows = _rows_at(layers, chains, depth)
        if len(rows) <= RIDGE_ROWS or depth == 0:
            return rows
    return [(p, [p]) for p in layers]  # pragma: no cover (depth 0 always returns)


def _block_chains(ctx: PanelContext, layers: list[str]) -> dict[str, list[str]]:
    """`{layer: [outermost block id, ..., innermost]}` for the layers inside blocks."""
    from insight.model.blocks import layer_blocks
    from insight.model.graph import layer_graph

    config = ctx.preflight.config if ctx.preflight is not None else None
    blocks = layer_blocks(layer_graph(config or {}))
    parent = {b.id: b.parent for b in blocks}

    def depth(block_id: str) -> int:
        return 0 if not parent.get(block_id) else 1 + depth(parent[block_id])

    chains: dict[str, list[str]] = {}
    for b in sorted(blocks, key=lambda b: depth(b.id)):
        for layer in b.layers:
            chains.setdefault(layer, []).append(b.id)
    return {p: chains[p] for p in layers if p in chains}


def _rows_at(layers: list[str], chains: dict[str, list[str]], depth: int
             ) -> list[tuple[str, list[str]]]:
    """Blocks `depth` levels down collapsed (those above opened), other layers alone."""
    rows: dict[str, list[str]] = {}
    for p in layers:
        chain = chains.get(p, [])
        rows.setdefault(chain[depth] if len(chain) > depth else p, []).append(p)
    return list(rows.items())


def _activation_ridge(ctx: PanelContext, by: str = "auto"):
    stats, ds = _stats(ctx)
    layers = stats.table["layer"].tolist()
    flags = dict(zip(layers, _flags(ctx, stats.table), strict=True))
    rows = ridge_rows(ctx, layers, by)
    hists, labels, notes, flagged = {}, {}, {}, []
    for row, members in rows:
        shown = members[-1]  # a block's values are its last layer's output
        hists[shown] = stats.histograms[shown]
        bad = [f"{p} ({flags[p]})" for p in members if flags[p]]
        if bad:
            flagged.append(shown)
        if len(members) > 1:
            nested = shown.startswith(row + "/")  # a nested model's block
            labels[shown] = (f"{row}/… → {shown[len(row) + 1:]}" if nested else
                             f"{row}_* → {shown.removeprefix(row + '_')}") + \
                (f" ({len(bad)} flagged)" if bad else "")
            notes[shown] = (f"last of the {len(members)} layers of {row}" +
                            (f"<br>flagged inside: {'<br>'.join(bad[:6])}" if bad else ""))
    grouped = len(rows) < len(layers)
    what = (f"one row per block ({len(rows)} rows for {len(layers)} layers): its last "
            "layer;<br>red: a flagged layer inside" if grouped else "red: flagged layers")
    extremes = stats.table.set_index("layer")[["min", "max"]]
    ranges = {p: (float(extremes.at[p, "min"]), float(extremes.at[p, "max"])) for p in hists}
    return ridge_figure(hists, flagged=flagged, labels=labels, notes=notes, ranges=ranges,
                        title=f"Activation histograms by depth<br><sup>{stats.n_examples:,} "
                              f"examples of {data_source(ds)}; each row on its own scale<br>"
                              f"{what}</sup>")


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
        return image_grid_figure(arr, captions, title=title, cols=8)  # one row: full width
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
               _activation_ridge,
               (Param("by", "str", "auto", RIDGE_BY,
                      f"One row per layer, or per block of layers (block_3_*: its last "
                      f"layer's values); auto: blocks above {RIDGE_ROWS} layers."),),
               uses=USES,
               description="One histogram of activation values per layer (or block), first "
                           "on top, each on its own scale."))
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
