"""Checks of the gradients of one batch at the file's weights: vanishing (a layer gets a
thousandth of what the last gets, a layer is far below its deeper neighbour, the gradient
halves layer after layer toward the input, or a layer gets nothing),
exploding, and NaN/Inf with the first layer where it appears.

Layers are compared by their gradient's RMS per weight (the L2 norm over the square root of
the weight count), so a big layer does not look stronger for being big.

Example:

>>> [f.check for f in diagnose(loaded).findings]  # doctest: +SKIP
['vanishing_gradient']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from insight.doctor.evidence import Evidence
from insight.doctor.findings import Finding
from insight.doctor.registry import check

__all__ = ["VANISHING_RATIO", "NEIGHBOUR_DROP", "DECAY_STEP", "DECAY_LAYERS", "DECAY_TOTAL",
           "EXPLODING_RATIO", "EXPLODING_NORM",
           "weighted_rms"]

VANISHING_RATIO = 1e-3  # first layer's gradient RMS / last layer's: vanishing below this
NEIGHBOUR_DROP = 1e-2  # a layer's RMS this far below its deeper neighbour's: it vanishes there
DECAY_STEP = 0.5  # ... or a chain of layers each at most half the next deeper one's,
DECAY_LAYERS = 3  # ... over this many steps,
DECAY_TOTAL = 1e-2  # ... falling 100x in all
EXPLODING_RATIO = 1e3  # first / last above this: exploding toward the input
EXPLODING_NORM = 1e4  # a total gradient norm above this: exploding


def weighted_rms(table: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """`(layers, norms, rms)` of the layers of a gradient table that have trainable weights
    and a finite gradient norm, in depth order: `rms` is the norm over sqrt(weights)."""
    params = table["params"].to_numpy(np.float64)
    norms = table["weight_grad_norm"].to_numpy(np.float64)
    keep = (params > 0) & np.isfinite(norms)
    layers = [p for p, k in zip(table["layer"].tolist(), keep, strict=True) if k]
    return layers, norms[keep], norms[keep] / np.sqrt(params[keep])


def _plot(ev: Evidence, check_name: str, marked: list[str]) -> None:
    ev.plot(check_name, None, {"kind": "gradient_norms",
                               "table": ev.grads.table.to_dict(orient="list"),
                               "marked": marked, "target": ev.grads.target})


def _decay_chain(rms: np.ndarray) -> tuple[int, int] | None:
    """`(shallowest, deepest)` indices of the longest chain of consecutive layers, each with
    at most `DECAY_STEP` of the next deeper one's gradient, spanning `DECAY_LAYERS` steps and
    a fall of `1 / DECAY_TOTAL`; `None` when there is none."""
    best = None
    i = len(rms) - 1
    while i > 0:
        j = i
        while j > 0 and 0 < rms[j - 1] <= DECAY_STEP * rms[j]:
            j -= 1
        if i - j >= DECAY_LAYERS and rms[j] <= DECAY_TOTAL * rms[i] and \
                (best is None or i - j > best[1] - best[0]):
            best = (j, i)
        i = j - 1 if j < i else i - 1
    return best


@check("vanishing_gradient", "vanishing_gradient", needs=("gradients",), cheap=True)
def vanishing_gradient(ev: Evidence) -> list[Finding]:
    """Gradients that fade toward the input, or a layer that gets none."""
    layers, _, rms = weighted_rms(ev.grads.table)
    if len(layers) < 2:
        return []
    where = {"page": "gradients", "panel": "gradient_norms"}
    out = []
    zero = [p for p, r in zip(layers, rms, strict=True) if r == 0]
    if zero:  # said once, at the deepest layer the gradient does not reach
        at = zero[-1]
        others = f" (nor {len(zero) - 1} layer{'s' if len(zero) > 2 else ''} before it)" \
            if len(zero) > 1 else ""
        out.append(Finding(
            "vanishing_gradient", "vanishing_gradient", "warning", at,
            {"layers_without_gradient": len(zero), "weighted_layers": len(layers),
             "weight_grad_norm": 0.0, "target": ev.grads.target},
            f"No gradient reaches {at}{others}: its weights' gradient is exactly 0, so they "
            "never change. Usually every unit after it is dead (a ReLU that never fires) or "
            "saturated.",
            "Fix the dead or saturated layers after it (see those findings); check that the "
            "layer is connected to the loss.", **where))
    low = int(np.argmin(rms[:-1]))  # the weakest layer before the last
    ratio = rms[low] / rms[-1] if rms[-1] > 0 else np.inf
    # where the fall happens: a layer far below its deeper neighbour, or the end of a chain
    # of layers each at most half the next deeper one's
    drops = [i for i in range(len(rms) - 1) if 0 < rms[i] < NEIGHBOUR_DROP * rms[i + 1]]
    chain = _decay_chain(rms)
    if (0 < ratio < VANISHING_RATIO or drops or chain) and layers[low] not in zero:
        at = layers[drops[-1]] if drops else layers[chain[0]] if chain else layers[low]
        how = (f", falling most steeply at {at}" if drops else
               f", halving or more layer after layer from {layers[chain[1]]} down to {at}"
               if chain else "")
        out.append(Finding(
            "vanishing_gradient", "vanishing_gradient", "warning", at,
            {"weakest_layer": layers[low], "weakest_rms": float(rms[low]),
             "last_layer": layers[-1], "last_rms": float(rms[-1]), "ratio": float(ratio),
             "limit": VANISHING_RATIO, "fall_at": at, "target": ev.grads.target},
            f"The gradient per weight of {layers[low]} ({rms[low]:.3g}) is {ratio:.2g} times "
            f"the last layer's ({layers[-1]}, {rms[-1]:.3g}){how}: the first layers barely "
            "learn (vanishing gradients).",
            "Use ReLU-family activations in hidden layers (sigmoid and tanh shrink gradients "
            "layer by layer), he_normal initialisation, BatchNormalization, or residual "
            "connections in deep stacks.", **where))
    if out:
        _plot(ev, "vanishing_gradient", [f.layer for f in out])
    return out


@check("exploding_gradient", "exploding_gradient", needs=("gradients",), cheap=True)
def exploding_gradient(ev: Evidence) -> list[Finding]:
    """Gradients that grow toward the input, or a huge total norm."""
    layers, norms, rms = weighted_rms(ev.grads.table)
    if not layers:
        return []
    total = float(np.sqrt((norms ** 2).sum()))
    ratio = rms[0] / rms[-1] if len(rms) > 1 and rms[-1] > 0 else 0.0
    if ratio <= EXPLODING_RATIO and total <= EXPLODING_NORM:
        return []
    big = layers[int(np.argmax(rms))]
    _plot(ev, "exploding_gradient", [big])
    return [Finding(
        "exploding_gradient", "exploding_gradient", "warning", big,
        {"total_norm": total, "first_layer": layers[0], "first_rms": float(rms[0]),
         "last_layer": layers[-1], "last_rms": float(rms[-1]), "ratio": float(ratio),
         "largest_layer": big, "target": ev.grads.target},
        (f"The gradients grow toward the input: the first layer's gradient per weight is "
         f"{ratio:.3g} times the last layer's" if ratio > EXPLODING_RATIO else
         f"The total gradient norm is {total:.3g}")
        + f" (largest at {big}): one update can throw the weights far off, and the loss jumps "
        "or turns NaN (exploding gradients).",
        "Scale the inputs, lower the learning rate, clip gradients (optimizer clipnorm=1.0), "
        "and use normalization layers.", page="gradients", panel="gradient_norms")]


@check("gradient_nan", "nan_inf", needs=("gradients",), cheap=True)
def gradient_nan(ev: Evidence) -> list[Finding]:
    """NaN or infinite gradients, at the first layer where they appear."""
    t = ev.grads.table
    values = t[["weight_grad_norm", "activation_grad_norm"]].to_numpy(np.float64)
    has_weights = (t["params"] > 0).to_numpy()
    bad = has_weights & ~np.isfinite(values[:, 0])
    if not np.isnan(values[:, 1]).all():  # a table of weight gradients only has none
        bad |= ~np.isfinite(values[:, 1])
    loss_bad = not np.isfinite(ev.grads.value)
    if not bad.any() and not loss_bad:
        return []
    idx = np.flatnonzero(bad)
    first = t["layer"].iloc[int(idx[0])] if idx.size else None
    return [Finding(
        "gradient_nan", "nan_inf", "error", first,
        {"first_layer": first or "", "layers_affected": int(idx.size),
         "loss": float(ev.grads.value), "target": ev.grads.target},
        ("The loss is NaN or infinite at the file's weights" if loss_bad else
         "The gradients are NaN or infinite") +
        (f", from {first} on ({idx.size} layers)" if first else "") +
        ": one update with them makes every weight NaN.",
        "Check the inputs and labels for NaN, lower the learning rate, clip gradients "
        "(clipnorm=1.0), and look for log(0) or division by 0 in custom losses.",
        page="gradients", panel="gradient_table")]
