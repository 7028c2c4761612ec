"""The Activations and Gradients pages' panels: what the layers output and how gradients flow.

Every panel reads the model and its data (`insight.data.dataset_for`: the `--data` file, the
`data.npz` bundled beside the model, else synthetic inputs), so each declares
`uses=("model", "data")`. Statistics use the first `STATS_EXAMPLES` examples; gradients one
batch of `GRADIENT_BATCH`. Importing this module registers the panels (`insight.panels` does
it on first use).

Example:

>>> from insight.panels import build_panel, PanelContext
>>> fig = build_panel("attribution", PanelContext(loaded), method="grad_cam")  # doctest: +SKIP
>>> build_panel("activation_table", PanelContext(loaded)).columns[:3].tolist()  # doctest: +SKIP
['layer', 'flag', 'class']
"""

from __future__ import annotations

from pathlib import Path
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
from insight.figures.gradients import (
    AttributionPart,
    attribution_figure,
    gradient_norms_figure,
    histograms_figure,
)
from insight.model.layers import iter_layers, resolve_layers
from insight.panels.registry import Panel, PanelContext, Param, register
from insight.probe.attribution import METHODS, attributions, last_conv_layer
from insight.probe.backprop import Gradients, gradients
from insight.probe.capture import activations
from insight.probe.stats import ActivationStats, activation_stats

__all__ = ["STATS_EXAMPLES", "GRADIENT_BATCH", "DEAD_LIMIT", "SATURATED_LIMIT", "vocabulary",
           "METHOD_TITLES", "attribution_methods", "probe_dataset"]

STATS_EXAMPLES = 2048  # examples the statistics and top-example searches read
GRADIENT_BATCH = 64  # examples in the one gradient batch
HEATMAP_EXAMPLES = 64  # rows of a dense layer's unit heatmap
DEAD_LIMIT = 0.5  # a layer with more dead units than this is flagged
SATURATED_LIMIT = 0.5  # ... or more saturated values (rows, for softmax)
METHOD_TITLES = {"saliency": "Saliency", "smoothgrad": "SmoothGrad",
                 "integrated_gradients": "Integrated gradients", "grad_cam": "Grad-CAM"}
_DATA = ("model", "data")


# -- shared helpers ------------------------------------------------------------------------

def _require(ctx: PanelContext, what: str) -> None:
    reason = ctx.loaded.limits.get(what)
    if reason:
        raise UsageError(f"No {what} for this model: {reason}.",
                         "Open the Keras file (.keras or .h5) it was exported from.",
                         f"format={ctx.loaded.format!r}")


def probe_dataset(ctx: PanelContext) -> Dataset:
    """The data every panel here reads: `ctx.dataset()`, shared with the page and the
    Embeddings panels."""
    return ctx.dataset()


_data = probe_dataset


def _subset(ds: Dataset) -> Dataset:
    return ds.take(slice(0, STATS_EXAMPLES)) if len(ds) > STATS_EXAMPLES else ds


def _example(ds: Dataset, example: int) -> int:
    if not 0 <= example < len(ds):
        raise UsageError(f"The example must be a row number from 0 to {len(ds) - 1}.", "",
                         f"example={example}")
    return example


def _layer(ctx: PanelContext, layer: str, default: str | None = None) -> str:
    if not layer:
        return default or resolve_layers(ctx.loaded.model, None)[0]
    return resolve_layers(ctx.loaded.model, [layer])[0]


def _inputs(ctx: PanelContext, x: Any) -> list[tuple[str, np.ndarray]]:
    """`[(input name, array)]`: a single input is named after the model's input."""
    if isinstance(x, dict):
        return [(k, np.asarray(v)) for k, v in x.items()]
    try:
        name = ctx.loaded.model.inputs[0].name
    except (AttributeError, IndexError, TypeError, ValueError):
        name = "input"
    return [(str(name), np.asarray(x))]


def _kind(arr: np.ndarray) -> str:
    """`"image"`, `"tokens"`, `"vector"` or `"other"` for an input array (first axis rows)."""
    if arr.dtype.kind == "f" and (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] in (1, 3, 4))):
        return "image"
    if arr.ndim == 2:
        return "tokens" if arr.dtype.kind in "iu" else "vector"
    return "other"


def _main_input(ctx: PanelContext, x: Any) -> tuple[str, np.ndarray, str]:
    """The input to show: the first image input, else the first token input, else the first."""
    parts = [(n, a, _kind(a)) for n, a in _inputs(ctx, x)]
    for wanted in ("image", "tokens"):
        found = next((p for p in parts if p[2] == wanted), None)
        if found:
            return found
    return parts[0]


def vocabulary(ctx: PanelContext) -> list[str] | None:
    """Tokens from a `vocab.tsv` beside the model (line i: token i), or `None`."""
    folder = Path(ctx.loaded.path)
    folder = folder if folder.is_dir() else folder.parent
    vocab = folder / "vocab.tsv"
    if not vocab.is_file():
        return None
    return [line.split("\t")[0] for line in vocab.read_text(encoding="utf-8").splitlines()]


def _tokens(ids: np.ndarray, vocab: list[str] | None) -> list[str]:
    """Token labels (`"3·the"`), trailing padding (id 0) left out."""
    ids = np.asarray(ids).ravel()
    nonzero = np.flatnonzero(ids)
    ids = ids[: nonzero[-1] + 1] if nonzero.size else ids
    return [f"{i}·{vocab[t] if vocab and 0 <= t < len(vocab) else t}" for i, t in enumerate(ids)]


def _text(ids: np.ndarray, vocab: list[str] | None, limit: int = 60) -> str:
    words = [t.split("·", 1)[1] for t in _tokens(ids, vocab)]
    text = " ".join(words)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _class_name(ds: Dataset, value: Any) -> str:
    arr = np.asarray(value)
    if arr.size > 1:
        value = int(arr.argmax())
    else:
        value = arr.reshape(()).item()
    if isinstance(value, float) and value.is_integer() and ds.class_names:
        value = int(value)
    if isinstance(value, int) and ds.class_names and 0 <= value < len(ds.class_names):
        return ds.class_names[value]
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _label(ds: Dataset, i: int) -> str:
    if ds.y is None:
        return "no label"
    y = next(iter(ds.y.values())) if isinstance(ds.y, dict) else ds.y
    return f"label {_class_name(ds, y[i])}"


def _source(ds: Dataset) -> str:
    return "synthetic inputs" if ds.synthetic else (ds.name or "data")


# -- activations ---------------------------------------------------------------------------

def _stats(ctx: PanelContext) -> tuple[ActivationStats, Dataset]:
    """Shared by the table and the ridge plot (memoised by the UI through `ctx.cached`)."""
    _require(ctx, "activations")
    ds = _subset(_data(ctx))
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
                              f"examples of {_source(ds)}<br>height ∝ √count, each row "
                              "scaled to its peak; red: flagged layers</sup>")


def _example_input(ctx: PanelContext, example: int):
    ds = _data(ctx)
    i = _example(ds, example)
    name, arr, kind = _main_input(ctx, ds.take([i]).x)
    title = f"Example {i}: {_label(ds, i)}"
    if kind == "image":
        return image_figure(arr[0], title=f"{title}<br><sup>input {name!r}</sup>")
    if kind == "tokens":
        return message_figure(_text(arr[0], vocabulary(ctx), limit=400) or "(empty)", wrap=30,
                              title=f"{title}<br><sup>tokens of input {name!r}</sup>")
    if kind == "vector":
        return values_figure(arr[0], [f"{name}[{j}]" for j in range(arr.shape[1])],
                             title=f"{title}<br><sup>input {name!r}</sup>")
    return message_figure(f"Input {name!r} has shape {arr.shape[1:]}: not drawn.", title=title)


def _layer_activations(ctx: PanelContext, layer: str, example: int):
    _require(ctx, "activations")
    ds = _data(ctx)
    i, path = _example(ds, example), _layer(ctx, layer)
    act = activations(ctx.loaded, ds.take([i]).x, [path])[path][0]
    if act.ndim >= 4:  # volumes: average the extra spatial axes away
        act = act.reshape(act.shape[0], act.shape[1], -1, act.shape[-1]).mean(2)
    if act.ndim == 3:
        return feature_maps_figure(act, title=f"{path}: feature maps of example {i}")
    if act.ndim == 2:
        _, arr, kind = _main_input(ctx, ds.take([i]).x)
        labels = _tokens(arr[0], vocabulary(ctx)) if kind == "tokens" else []
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
    _require(ctx, "activations")
    ds = _subset(_data(ctx))
    path = _layer(ctx, layer)
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
             f"{len(ds):,} examples of {_source(ds)}, by the unit's mean over positions"
             f"{dead}</sup>")
    name, arr, kind = _main_input(ctx, ds.take(top).x)
    if kind == "image":
        captions = [f"#{i}" + ("" if ds.y is None else
                                f" · {_label(ds, i).removeprefix('label ')}") +
                    f"<br>{score[i]:.3g}" for i in top]
        return image_grid_figure(arr, captions, title=title)
    vocab = vocabulary(ctx) if kind == "tokens" else None
    labels = [f"#{i}" + ("" if ds.y is None else f" · {_label(ds, i).removeprefix('label ')}")
              for i in top]
    if kind == "tokens":
        texts = [_text(arr[j], vocab, 400) for j in range(len(top))]
        short = [f"{lab}: {_text(arr[j], vocab, 26)}" for j, lab in enumerate(labels)]
        return values_figure(score[top], short, hover=texts, title=title,
                             x_title="mean activation")
    return values_figure(score[top], labels, title=title, x_title="mean activation")


# -- gradients -----------------------------------------------------------------------------

def _gradients(ctx: PanelContext) -> tuple[Gradients, Dataset]:
    """Shared by the norms table and figure and the histograms (memoised like `_stats`)."""
    _require(ctx, "gradients")
    batch = _data(ctx).take(slice(0, GRADIENT_BATCH))
    g = ctx.cached(f"probe:gradients:{GRADIENT_BATCH}",
                   lambda: gradients(ctx.loaded, batch.x, batch.y))
    return g, batch


def _gradient_table(ctx: PanelContext) -> pd.DataFrame:
    return _gradients(ctx)[0].table


def _gradient_norms(ctx: PanelContext):
    g, batch = _gradients(ctx)
    return gradient_norms_figure(
        g.table, title=f"Gradient norms by depth: {ctx.loaded.name}",
        subtitle=f"of the {g.target}<br>over {len(batch)} examples of {_source(batch)}")


def _weight_histograms(ctx: PanelContext, layer: str):
    g, _ = _gradients(ctx)
    table = g.table
    default = next(iter(table.loc[table["params"] > 0, "layer"]), None)
    path = _layer(ctx, layer, default)
    found = {p: obj for p, obj, _ in iter_layers(ctx.loaded.model)}[path]
    title = f"Weights and gradients of {path}"
    if getattr(found, "layers", None):
        return message_figure(f"{path!r} is a nested model: pick one of its layers.",
                              title=title)
    own = list(found.trainable_weights)
    if not own:
        return message_figure(f"{path!r} ({type(found).__name__}) has no trainable weights.",
                              title=title)
    weights = {v.path: np.asarray(v.numpy()) for v in own}
    grads = {v.path: g.weights[v.path] for v in own if v.path in g.weights}
    return histograms_figure([("weights", weights), ("gradients", grads)],
                             title=f"{title}<br><sup>gradients of the {g.target}</sup>")


def attribution_methods(loaded: Any) -> list[str]:
    """The attribution methods that apply to `loaded` (Grad-CAM needs a conv layer)."""
    return [m for m in METHODS if m != "grad_cam" or last_conv_layer(loaded) is not None]


def _attribution(ctx: PanelContext, method: str, example: int):
    _require(ctx, "gradients")
    ds = _data(ctx)
    i = _example(ds, example)
    row = ds.take([i])
    att = attributions(ctx.loaded, row.x, method)
    inputs = dict(_inputs(ctx, row.x))
    if isinstance(att.maps, dict):
        maps = att.maps
    elif method == "grad_cam":
        maps = {_main_input(ctx, row.x)[0]: att.maps}
    else:
        maps = {next(iter(inputs)): att.maps}
    vocab = vocabulary(ctx)
    parts, signed = [], method == "integrated_gradients"
    for name, m in maps.items():
        arr, values = inputs[name][0], np.asarray(m)[0]
        if values.ndim == 2:
            gray = arr.mean(-1) if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4) else arr
            parts.append(AttributionPart(name, "image", values, image=gray))
        elif _kind(inputs[name]) == "tokens":
            labels = _tokens(arr, vocab)
            parts.append(AttributionPart(name, "tokens", values[: len(labels)], labels=labels))
            signed = True
        else:
            flat = values.ravel()
            parts.append(AttributionPart(name, "features", flat,
                                         labels=[f"{name}[{j}]" for j in range(flat.size)]))
    target = _class_name(ds, int(att.targets[0]))
    tokens = any(p.kind == "tokens" for p in parts)
    note = att.note + ("" if not tokens else "; tokens from vocab.tsv" if vocab else
                       "; token ids (no vocab.tsv beside the model)")
    return attribution_figure(
        parts, signed=signed, note=note,
        title=f"{METHOD_TITLES[method]} · example {i} · explains class {target} "
              f"({_label(ds, i)})")


_EXAMPLE = Param("example", "int", 0, help="Row number of the example.")
_LAYER = Param("layer", "str", "", help="Layer path (nested: outer/inner); empty: the first.")

register(Panel("activation_table", "Activation statistics", "table", _activation_table,
               uses=_DATA, description="Per-layer activation statistics with dead and "
                                       "saturated layers flagged, and a histogram each."))
register(Panel("activation_ridge", "Activation histograms by depth", "figure",
               _activation_ridge, uses=_DATA,
               description="One histogram of activation values per layer, first layer on top."))
register(Panel("example_input", "Example input", "figure", _example_input, (_EXAMPLE,),
               uses=_DATA, description="One input example: image, tokens or features."))
register(Panel("layer_activations", "Layer activations", "figure", _layer_activations,
               (_LAYER, _EXAMPLE), uses=_DATA,
               description="Feature maps of a conv layer for one example, or a dense layer's "
                           "units across examples."))
register(Panel("top_examples", "Top examples of a unit", "figure", _top_examples,
               (_LAYER, Param("unit", "int", 0, help="Unit (channel) index."),
                Param("k", "int", 8, help="How many examples.")), uses=_DATA,
               description="The examples that activate one unit most."))
register(Panel("gradient_table", "Gradient norms", "table", _gradient_table, uses=_DATA,
               description="Per-layer norms of weights, weight gradients and output gradients."))
register(Panel("gradient_norms", "Gradient norms by depth", "figure", _gradient_norms,
               uses=_DATA, description="Weight and output gradient norms per layer on a log "
                                       "axis: vanishing or exploding gradients at a glance."))
register(Panel("weight_histograms", "Weight and gradient histograms", "figure",
               _weight_histograms, (_LAYER,), uses=_DATA,
               description="Histograms of one layer's weights and their gradients."))
register(Panel("attribution", "Attribution map", "figure", _attribution,
               (Param("method", "str", "saliency", choices=METHODS,
                      help="saliency, smoothgrad, integrated_gradients or grad_cam."),
                _EXAMPLE), uses=_DATA,
               description="Which parts of one input drive the predicted class."))
