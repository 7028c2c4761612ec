"""Checks of what the model does on its data at the file's weights: dead and saturated units,
activation scale over depth, NaN/Inf activations, and predictions (all one class; a loss far
from the one training reported).

Activations come from `insight.activation_stats` over the first `STATS_ROWS` examples (the
Activations page's table), predictions from the first `PREDICT_ROWS`.

Example:

>>> [f.layer for f in diagnose(loaded).findings if f.check == "dead_units"]  # doctest: +SKIP
['dense1']
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from insight.doctor.checks_weights import prediction_loss_value
from insight.doctor.evidence import Evidence, Unavailable
from insight.doctor.findings import Finding
from insight.doctor.heads import RELU_FAMILY, activation_name
from insight.doctor.registry import check
from insight.doctor.series import last_finite, training_series
from insight.model.layers import PASS_THROUGH

__all__ = ["DEAD_INFO", "DEAD_WARNING", "SATURATED_LIMIT", "SCALE_CHANGE", "CONSTANT_SHARE",
           "PREDICTION_LOSS_RATIO", "PREDICTION_LOSS_MARGIN", "dead_layers", "hidden_rows"]

DEAD_INFO = 0.25  # share of a ReLU layer's units dead for every example: worth knowing
DEAD_WARNING = 0.5  # ... half its capacity lost (all of them: an error, nothing flows)
SATURATED_LIMIT = 0.5  # share of a hidden sigmoid/tanh layer's values at their limits
SCALE_CHANGE = 100.0  # activation std growing or shrinking this much from layer to layer
CONSTANT_SHARE = 0.95  # share of predictions in one class that means "always that class"
PREDICTION_LOSS_RATIO = 4.0  # the outputs' loss this many times training's (and
PREDICTION_LOSS_MARGIN = 1.0  # this much above it): the outputs are not what was trained
NAN_ROWS = 32  # examples run layer by layer when NaN activations break the statistics


def hidden_rows(ev: Evidence) -> pd.DataFrame:
    """Rows of the activation table for layers that compute (not pass-through layers, nested
    models or outputs), in depth order, with their activation's name."""
    table = ev.stats.table
    layers = dict(ev.layers)
    keep = [not PASS_THROUGH.fullmatch(c) and p not in ev.nested and p not in ev.output_layers
            for p, c in zip(table["layer"], table["class"], strict=True)]
    rows = table[keep].copy()
    rows["activation"] = [activation_name(layers[p]) for p in rows["layer"]]
    return rows


def dead_layers(ev: Evidence) -> pd.DataFrame:
    """Hidden ReLU-family layers with `dead_fraction` at or above `DEAD_INFO`."""
    rows = hidden_rows(ev)
    return rows[rows["activation"].isin(RELU_FAMILY) & (rows["dead_fraction"] >= DEAD_INFO)]


@check("dead_units", "dead_units", needs=("activations",))
def dead_units(ev: Evidence) -> list[Finding]:
    """ReLU units that output 0 for every example (dead ReLUs)."""
    out = []
    rows = hidden_rows(ev)
    for _, r in dead_layers(ev).iterrows():
        frac = float(r["dead_fraction"])
        severity = "error" if frac >= 1.0 else "warning" if frac >= DEAD_WARNING else "info"
        out.append(Finding(
            "dead_units", "dead_units", severity, r["layer"],
            {"dead_units": int(r["dead_units"]), "units": int(r["units"]),
             "dead_fraction": frac, "examples": int(ev.stats.n_examples)},
            f"{int(r['dead_units'])} of {r['layer']}'s {int(r['units'])} units ({frac:.0%}) are "
            f"0 for every one of {ev.stats.n_examples:,} examples: dead ReLUs, which get no "
            "gradient and never recover"
            + (". Nothing flows through the layer." if frac >= 1.0 else
               ". Half its capacity or more is lost." if frac >= DEAD_WARNING else
               ". Common in trained networks at this level; a problem if it grows."),
            "Lower the learning rate, initialise with he_normal and zero biases, or use "
            "LeakyReLU/ELU so units cannot die; BatchNormalization before the ReLU helps too.",
            page="activations", panel="activation_table"))
    if out:
        ev.plot("dead_units", None, {
            "kind": "bars", "title": "Dead units per ReLU layer",
            "labels": rows.loc[rows["activation"].isin(RELU_FAMILY), "layer"].tolist(),
            "values": rows.loc[rows["activation"].isin(RELU_FAMILY),
                               "dead_fraction"].astype(float).tolist(),
            "highlight": [f.layer for f in out if f.severity != "info"] or
            [f.layer for f in out], "x_title": "layer", "y_title": "share of units dead",
            "percent": True})
    return out


@check("saturated_units", "saturated_units", needs=("activations",))
def saturated_units(ev: Evidence) -> list[Finding]:
    """Hidden sigmoid/tanh units stuck at their limits (not output layers)."""
    out = []
    for _, r in hidden_rows(ev).iterrows():
        frac = r["saturated_fraction"]
        if not (isinstance(frac, float) and frac > SATURATED_LIMIT):
            continue
        kind = r["saturation"]
        out.append(Finding(
            "saturated_units", "saturated_units", "warning", r["layer"],
            {"saturated_fraction": float(frac), "activation": kind, "units": int(r["units"])},
            f"{frac:.0%} of {r['layer']}'s {kind} values sit at its limits"
            f" ({'below 0.01 or above 0.99' if kind == 'sigmoid' else 'beyond ±0.99'}), where "
            f"{kind}'s slope is almost 0: the gradient through them nearly vanishes and the "
            "layers before learn slowly.",
            "Scale the inputs, use a smaller initialisation (glorot), add BatchNormalization "
            "before the activation, or use ReLU in hidden layers.",
            page="activations", panel="activation_table"))
    return out


@check("activation_scale", "activation_scale", needs=("activations",))
def activation_scale(ev: Evidence) -> list[Finding]:
    """Activation scale growing or shrinking layer after layer."""
    rows = hidden_rows(ev)
    rows = rows[np.isfinite(rows["std"].astype(float)) & (rows["std"] > 0)]
    if len(rows) < 3:
        return []
    std = rows["std"].to_numpy(np.float64)
    layers = rows["layer"].tolist()
    logs = np.log10(std)
    grow_i = int(np.argmin(logs[:-1]))
    grow_j = grow_i + 1 + int(np.argmax(logs[grow_i + 1:]))
    shrink_i = int(np.argmax(logs[:-1]))
    shrink_j = shrink_i + 1 + int(np.argmin(logs[shrink_i + 1:]))
    out = []
    for i, j, growing in ((grow_i, grow_j, True), (shrink_i, shrink_j, False)):
        ratio = std[j] / std[i]
        if (ratio >= SCALE_CHANGE) if growing else (ratio <= 1 / SCALE_CHANGE):
            out.append(Finding(
                "activation_scale", "activation_scale", "warning", layers[j],
                {"from_layer": layers[i], "from_std": float(std[i]), "to_layer": layers[j],
                 "to_std": float(std[j]), "ratio": float(ratio), "layers": int(j - i)},
                f"The activations' std {'grows' if growing else 'shrinks'} from {std[i]:.3g} in "
                f"{layers[i]} to {std[j]:.3g} in {layers[j]} ({ratio:.3g}x over {j - i} layers): "
                + ("signals blow up with depth, and so will the gradients." if growing else
                   "signals fade with depth, and so do the gradients."),
                "Use an initialisation matched to the activation (he_normal for ReLU, "
                "glorot for tanh/sigmoid), add normalization layers (BatchNormalization, "
                "LayerNormalization), and scale the inputs.",
                page="activations", panel="activation_ridge"))
    return out


def _nonfinite_layers(ev: Evidence) -> tuple[list[str], list[str]]:
    """`(layers with NaN/Inf activations, all layers)` in depth order: from the statistics,
    or, when NaN broke them, from the activations of a few examples."""
    try:
        t = ev.stats.table
    except Unavailable:
        from insight.probe.capture import activations

        acts = activations(ev.source, ev.data().take(slice(0, NAN_ROWS)).x)
        names = list(acts)
        return [p for p in names if not np.isfinite(np.asarray(acts[p], np.float64)).all()], \
            names
    values = t[["mean", "std", "min", "max"]].to_numpy(np.float64)
    return t["layer"][~np.isfinite(values).all(1)].tolist(), t["layer"].tolist()


@check("activation_nan", "nan_inf", needs=("data",))
def activation_nan(ev: Evidence) -> list[Finding]:
    """NaN or infinite activations, at the first layer where they appear."""
    ev.limit("activations")
    bad, layers = _nonfinite_layers(ev)
    if not bad:
        return []
    first = bad[0]
    return [Finding(
        "activation_nan", "nan_inf", "error", first,
        {"first_layer": first, "layers_affected": len(bad), "layers": len(layers)},
        f"Activations are NaN or infinite from {first} on ({len(bad)} of {len(layers)} layers): "
        "everything after it, the loss and every gradient are NaN.",
        "Check the inputs for NaN, the weights of that layer (a diverged checkpoint), and "
        "operations that overflow (exp, log of 0, division).",
        page="activations", panel="activation_table")]


def _predicted(probs: np.ndarray) -> np.ndarray:
    p = probs.reshape(len(probs), -1)
    return (p[:, 0] > 0.5).astype(np.int64) if p.shape[1] == 1 else p.argmax(1)


def _true(y: np.ndarray, units: int) -> np.ndarray | None:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == units and units > 1:
        return y.argmax(1)
    flat = y.reshape(len(y), -1)
    if flat.shape[1] != 1 or not np.all(np.mod(flat, 1) == 0):
        return None
    return flat[:, 0].astype(np.int64)


@check("constant_predictions", "not_learning", needs=("labels", "predictions"))
def constant_predictions(ev: Evidence) -> list[Finding]:
    """A classifier that predicts the same class for (almost) every example."""
    out = []
    for h, probs in zip(ev.heads, ev.predictions, strict=True):
        y = ev.labels[h.index]
        if y is None or not h.classes:
            continue
        true = _true(y[:len(probs)], h.units or 1)
        if true is None or len(np.unique(true)) < 2:
            continue
        pred = _predicted(probs)
        values, counts = np.unique(pred, return_counts=True)
        top = int(values[np.argmax(counts)])
        share, label_share = counts.max() / len(pred), float((true == top).mean())
        accuracy = float((pred == true).mean())
        if share >= CONSTANT_SHARE and label_share < 0.8:
            out.append(Finding(
                "constant_predictions", "not_learning", "warning", h.layer,
                {"output": h.name, "predicted_class": top, "share": float(share),
                 "label_share": label_share, "accuracy": accuracy, "examples": int(len(pred))},
                f"{h.name!r} predicts class {top} for {share:.0%} of {len(pred)} examples, "
                f"while only {label_share:.0%} of them are that class: the model ignores its "
                f"input (accuracy {accuracy:.0%}).",
                "Check the setup findings above first (loss and output activation, labels); "
                "then the learning rate and whether training ran at all.",
                page="activations", panel="activation_table"))
    return out


@check("prediction_loss", "loss_activation_mismatch",
       needs=("compile", "labels", "predictions", "curves"))
def prediction_loss(ev: Evidence) -> list[Finding]:
    """The outputs' loss far above the training loss the log reports."""
    series = ev.shared("training_series", lambda: training_series(ev.curves))
    if len(ev.heads) != 1 or not series:
        return []
    h, probs = ev.heads[0], ev.predictions[0]
    y = ev.labels[0]
    train = last_finite(series[0].get("loss"))
    if y is None or train is None or h.activation not in ("softmax", "sigmoid"):
        return []
    loss = prediction_loss_value(h, probs, y[:len(probs)])
    if loss is None or not math.isfinite(loss):
        return []
    if loss > max(PREDICTION_LOSS_RATIO * train, train + PREDICTION_LOSS_MARGIN):
        return [Finding(
            "prediction_loss", "loss_activation_mismatch", "error", h.layer,
            {"output": h.name, "outputs_loss": loss, "training_loss": train,
             "examples": int(len(probs))},
            f"Computed from the model's outputs, the loss on the data is {loss:.3g}, while "
            f"training reported {train:.3g}. Keras computed the training loss from the logits "
            f"behind the {h.activation}, and the outputs do not match them: the predictions "
            "are not what the loss trained.",
            "Fix the output activation and loss pair (see the findings about the output), "
            "then retrain.", page="training", panel="training_curves")]
    return []
