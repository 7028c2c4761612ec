"""The Gradients page's panels: how gradients flow, and which parts of an input drive the
prediction.

Gradient norms and histograms use one batch of the first `GRADIENT_BATCH` examples of the
model's data; attributions one example. Shared helpers are in `insight.panels.probe`.
Importing this module registers the panels (`insight.panels` does it on first use).

Example:

>>> from insight.panels import build_panel, PanelContext
>>> fig = build_panel("attribution", PanelContext(loaded), method="grad_cam")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from insight.data import Dataset
from insight.figures.activations import message_figure
from insight.figures.gradients import (
    AttributionPart,
    attribution_figure,
    gradient_norms_figure,
    histograms_figure,
)
from insight.model.layers import iter_layers
from insight.panels.doctor import page_report
from insight.panels.probe import (
    EXAMPLE,
    LAYER,
    USES,
    check_probing,
    checked_example,
    class_name,
    data_source,
    example_label,
    input_kind,
    layer_path,
    main_input,
    model_inputs,
    probe_dataset,
    token_labels,
    vocabulary,
)
from insight.panels.registry import Panel, PanelContext, Param, register
from insight.probe.attribution import METHODS, attributions, last_conv_layer
from insight.probe.backprop import Gradients, gradients

__all__ = ["GRADIENT_BATCH", "METHOD_TITLES", "attribution_methods", "weighted_layers"]

GRADIENT_BATCH = 64  # examples in the one gradient batch
METHOD_TITLES = {"saliency": "Saliency", "smoothgrad": "SmoothGrad",
                 "integrated_gradients": "Integrated gradients", "grad_cam": "Grad-CAM"}


def _gradients(ctx: PanelContext) -> tuple[Gradients, Dataset]:
    """Shared by the norms table and figure and the histograms (memoised through `ctx.cached`)."""
    check_probing(ctx, "gradients")
    batch = probe_dataset(ctx).take(slice(0, GRADIENT_BATCH))
    g = ctx.cached(f"probe:gradients:{GRADIENT_BATCH}",
                   lambda: gradients(ctx.loaded, batch.x, batch.y))
    return g, batch


def weighted_layers(table: pd.DataFrame) -> list[str]:
    """The layers of a `gradient_table` that have trainable weights, in model order."""
    return table.loc[table["params"] > 0, "layer"].tolist()


def _gradient_table(ctx: PanelContext) -> pd.DataFrame:
    return _gradients(ctx)[0].table


_MARKS = {"vanishing_gradient": "vanishing", "exploding_gradient": "exploding",
          "gradient_nan": "NaN/Inf"}


def _gradient_norms(ctx: PanelContext):
    g, batch = _gradients(ctx)
    marked: dict[str, str] = {}  # the doctor's verdicts, where it found them
    for f in page_report(ctx, "gradients").findings:
        if f.layer and f.check in _MARKS:
            marked[f.layer] = _MARKS[f.check]
    fig = gradient_norms_figure(
        g.table, title=f"Gradient norms by depth: {ctx.loaded.name}",
        subtitle=f"of the {g.target}<br>over {len(batch)} examples of {data_source(batch)}",
        marked=marked)
    fig.layout.meta = {"marked": marked}
    return fig


def _weight_histograms(ctx: PanelContext, layer: str):
    g, _ = _gradients(ctx)
    path = layer_path(ctx, layer, next(iter(weighted_layers(g.table)), None))
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
    check_probing(ctx, "gradients")
    ds = probe_dataset(ctx)
    i = checked_example(ds, example)
    row = ds.take([i])
    att = attributions(ctx.loaded, row.x, method)
    inputs = dict(model_inputs(ctx, row.x))
    if isinstance(att.maps, dict):
        maps = att.maps
    elif method == "grad_cam":
        maps = {main_input(ctx, row.x)[0]: att.maps}
    else:
        maps = {next(iter(inputs)): att.maps}
    vocab = vocabulary(ctx)
    parts, signed = [], method == "integrated_gradients"
    for name, m in maps.items():
        arr, values = inputs[name][0], np.asarray(m)[0]
        if values.ndim == 2:
            gray = arr.mean(-1) if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4) else arr
            parts.append(AttributionPart(name, "image", values, image=gray))
        elif input_kind(inputs[name]) == "tokens":
            labels = token_labels(arr, vocab)
            parts.append(AttributionPart(name, "tokens", values[: len(labels)], labels=labels))
            signed = True
        else:
            flat = values.ravel()
            parts.append(AttributionPart(name, "features", flat,
                                         labels=[f"{name}[{j}]" for j in range(flat.size)]))
    target = class_name(ds, int(att.targets[0]))
    tokens = any(p.kind == "tokens" for p in parts)
    note = att.note + ("" if not tokens else "; tokens from vocab.tsv" if vocab else
                       "; token ids (no vocab.tsv beside the model)")
    return attribution_figure(
        parts, signed=signed, note=note,
        title=f"{METHOD_TITLES[method]} · example {i} · explains class {target} "
              f"({example_label(ds, i)})")


register(Panel("gradient_table", "Gradient norms", "table", _gradient_table, uses=USES,
               description="Per-layer norms of weights, weight gradients and output gradients."))
register(Panel("gradient_norms", "Gradient norms by depth", "figure", _gradient_norms,
               uses=USES, description="Weight and output gradient norms per layer on a log "
                                      "axis: vanishing or exploding gradients at a glance."))
register(Panel("weight_histograms", "Weight and gradient histograms", "figure",
               _weight_histograms, (LAYER,), uses=USES,
               description="Histograms of one layer's weights and their gradients."))
register(Panel("attribution", "Attribution map", "figure", _attribution,
               (Param("method", "str", "saliency", choices=METHODS,
                      help="saliency, smoothgrad, integrated_gradients or grad_cam."),
                EXAMPLE), uses=USES,
               description="Which parts of one input drive the predicted class."))
