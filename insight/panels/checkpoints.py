"""Panels of the Checkpoints page: one model across its checkpoints.

The folder is the context's `compare_path` when that is a folder (`insight serve MODEL
--compare CKPT_DIR`), else the `checkpoints/` folder beside the model file (as the digits_cnn
sample ships it). The weight-change heatmap reads the files only; CKA and the projection run a
private copy of the folder's model with each checkpoint's weights swapped in (never the app's
shared model), on at most `inputs` rows of the data.

Example:

>>> from insight.panels import build_panel, PanelContext
>>> fig = build_panel("checkpoint_weight_changes", PanelContext(loaded))  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pandas as pd

from insight.compare.checkpoints import CheckpointFolder, find_checkpoints, read_weights
from insight.errors import DataError, UsageError
from insight.figures.timeline import (
    VALUES,
    cka_over_epochs,
    projection_over_epochs,
    weight_change_heatmap,
)
from insight.panels.registry import Panel, PanelContext, Param, register

__all__ = ["checkpoint_folder", "timeline_folder", "followed_layers", "CHECKPOINTS_BESIDE"]

CHECKPOINTS_BESIDE = "checkpoints"  # the folder beside a model file that is looked at
_USES = ("model", "compare")
_SWAP_LOCK = threading.Lock()  # one checkpoint swapped into a timeline model at a time
_INPUTS = Param("inputs", "int", 256, help="Inputs run through every checkpoint (the first "
                "rows of the data).", min_value=16, max_value=2048, step=16)


def checkpoint_folder(ctx: PanelContext) -> Path | None:
    """The checkpoint folder the panels read: `ctx.compare_path` when it is a folder, else
    `checkpoints/` beside the model file, else `None`."""
    if ctx.compare_path is not None and Path(ctx.compare_path).is_dir():
        return Path(ctx.compare_path)
    report = ctx.preflight or (ctx.loaded.preflight if ctx.loaded is not None else None)
    if report is None:
        return None
    file = Path(report.model_file)
    beside = (file if file.is_dir() else file.parent) / CHECKPOINTS_BESIDE
    return beside if beside.is_dir() else None


def timeline_folder(ctx: PanelContext) -> CheckpointFolder:
    """The checkpoint folder found and checked (memoised on its files' sizes and mtimes).

    Raises:
        DataError: no checkpoint folder, or fewer than two checkpoints in it.
    """
    folder = checkpoint_folder(ctx)
    if folder is None:
        raise DataError("No checkpoint folder for this model.",
                        "Serve it with `--compare CHECKPOINT_DIR` (the folder ModelCheckpoint "
                        "writes), or keep the checkpoints in a checkpoints/ folder beside the "
                        "model file.", f"compare_path={ctx.compare_path!s}")
    safe = ctx.loaded.safe_mode if ctx.loaded is not None else True
    found = find_checkpoints(folder, safe_mode=safe)
    return ctx.cached(f"checkpoints|{folder}|{found.stamp()}|{safe}", lambda: found)


def followed_layers(ctx: PanelContext) -> list[str]:
    """The layers with weights in the last checkpoint, in the model's order: what CKA and the
    projection follow (read from the file, no model built)."""
    ckpts = timeline_folder(ctx)
    stored = ctx.cached(f"timeline_layers|{ckpts.folder}|{ckpts.stamp()}",
                        lambda: list(read_weights(ckpts.checkpoints[-1])))
    rank = {n: i for i, n in enumerate(ckpts.layers)}
    return sorted(stored, key=lambda n: (rank.get(n, len(rank)), n))


def _list(ctx: PanelContext) -> pd.DataFrame:
    ckpts = timeline_folder(ctx)
    return pd.DataFrame({"epoch": ckpts.epochs,
                         "file": [c.path.name for c in ckpts.checkpoints],
                         "kind": [c.kind for c in ckpts.checkpoints],
                         "KB": [round(c.path.stat().st_size / 1024, 1)
                                for c in ckpts.checkpoints]})


def _weights(ctx: PanelContext, value: str = "relative_change"):
    from insight.compare.timeline import weight_timeline

    ckpts = timeline_folder(ctx)
    df = ctx.cached(f"timeline_weights|{ckpts.folder}|{ckpts.stamp()}",
                    lambda: weight_timeline(ckpts, progress=ctx.progress))
    return weight_change_heatmap(df, value)


def _bundled(path: Path) -> bool:
    from insight.model.samples import sample_root

    try:
        return path.resolve().is_relative_to(sample_root().resolve())
    except (OSError, ValueError):
        return False


def _activations(ctx: PanelContext, inputs: int) -> tuple[dict, list[str], Any]:
    """`({epoch: {layer: [n, features]}}, layers, dataset)` of every checkpoint, computed once
    per folder version, data and size."""
    from insight.compare.timeline import timeline_model

    ckpts = timeline_folder(ctx)
    safe = ctx.loaded.safe_mode if ctx.loaded is not None else True
    key = f"{ckpts.folder}|{ckpts.stamp()}|{safe}"

    def load():
        isolate = ckpts.model_file is not None and not _bundled(ckpts.model_file)
        return timeline_model(ckpts, safe_mode=safe, isolate=isolate)

    loaded = ctx.cached(f"timeline_model|{key}", load)

    def compute():
        from insight.compare.timeline import apply_weights
        from insight.data import dataset_for
        from insight.model.layers import layer_paths
        from insight.probe.capture import activations, as_inputs, count_rows, slice_rows

        data = dataset_for(loaded, ctx.data_path)
        x = as_inputs(data.x, loaded.model)
        x = slice_rows(x, 0, min(inputs, count_rows(x)))
        stored = set(read_weights(ckpts.checkpoints[-1]))
        layers = [p for p in layer_paths(loaded.model) if p in stored]
        out = {}
        with _SWAP_LOCK:
            for i, c in enumerate(ckpts.checkpoints):
                apply_weights(loaded.model, read_weights(c))
                acts = activations(loaded.model, x, layers)
                out[c.epoch] = {p: a.reshape(len(a), -1) for p, a in acts.items()}
                if ctx.progress is not None:
                    ctx.progress((i + 1) / len(ckpts.checkpoints), f"Ran {c.label}")
        return out, layers, data

    return ctx.cached(f"timeline_acts|{key}|{ctx.data_path}|{inputs}", compute)


def _cka(ctx: PanelContext, inputs: int = 256):
    from insight.compare.cka import linear_cka

    acts, layers, _ = _activations(ctx, inputs)
    epochs = sorted(acts)
    final = acts[epochs[-1]]
    rows = [(p, d, e, float(linear_cka(acts[e][p], final[p])))
            for d, p in enumerate(layers) for e in epochs]
    return cka_over_epochs(pd.DataFrame(rows, columns=["layer", "depth", "epoch", "cka"]))


def _projection(ctx: PanelContext, layer: str = "", inputs: int = 256):
    from insight.compare.timeline import projection_frame

    acts, layers, data = _activations(ctx, inputs)
    if not layers:
        raise DataError("The checkpoints hold no layer weights to follow.", "",
                        f"folder={timeline_folder(ctx).folder}")
    chosen = layer or (layers[-2] if len(layers) > 1 else layers[-1])
    if chosen not in layers:
        raise UsageError(f"No such layer with weights: {chosen!r}. Layers are: "
                         f"{', '.join(layers)}.", "Pick one of them.", f"layer={layer!r}")
    df = projection_frame({e: a[chosen] for e, a in acts.items()})
    labels = None if data.y is None else data.y[:len(df[df.epoch == df.epoch.min()])]
    return projection_over_epochs(df, chosen, labels, data.class_names)


register(Panel("checkpoint_list", "Checkpoints", "table", _list, needs_model=False,
               uses=_USES, description="The checkpoint files in epoch order (epochs from "
               "the file names, else their order)."))
register(Panel("checkpoint_weight_changes", "Weight change per layer and epoch", "figure",
               _weights, params=(
                   Param("value", "str", "relative_change", tuple(VALUES),
                         "Relative change ‖W_t − W_(t−1)‖ / ‖W_(t−1)‖, or the cosine between "
                         "consecutive checkpoints."),),
               needs_model=False, uses=_USES,
               description="Which layers learn when, and which froze or died: each layer's "
                           "weight change between consecutive checkpoints (layer × epoch)."))
register(Panel("checkpoint_cka", "CKA against the final checkpoint", "figure", _cka,
               params=(_INPUTS,), needs_model=False, uses=(*_USES, "data"),
               description="Which layers converge first: linear CKA of each layer's outputs "
                           "at every epoch against the final checkpoint's."))
register(Panel("checkpoint_projection", "A layer across epochs", "figure", _projection,
               params=(Param("layer", "str", "", help="The layer (with weights) to follow; "
                             "empty: the one before the output layer."), _INPUTS),
               needs_model=False, uses=(*_USES, "data"),
               description="A layer's 2D PCA layout at every epoch, aligned to the previous "
                           "one by orthogonal Procrustes, with an epoch slider."))
