"""Checks of the initial state: the weights in the file (all zero, absurd scale, not finite,
large negative biases before ReLUs) and the loss they give (far above ln(C) for a C-class
classifier means confidently wrong outputs).

Example:

>>> [f.check for f in diagnose(loaded).findings]  # doctest: +SKIP
['negative_bias']
"""

from __future__ import annotations

import math

import numpy as np

from insight.doctor.evidence import Evidence
from insight.doctor.findings import Finding
from insight.doctor.heads import BINARY_CE, CATEGORICAL_CE, RELU_FAMILY, SPARSE_CE, activation_name
from insight.doctor.registry import check

__all__ = ["WEIGHT_SCALE_HIGH", "WEIGHT_SCALE_LOW", "NEGATIVE_BIAS", "NEGATIVE_BIAS_SHARE",
           "INITIAL_LOSS_RATIO", "INITIAL_LOSS_MARGIN", "glorot_std", "prediction_loss_value",
           "relu_layers"]

WEIGHT_SCALE_HIGH = 10.0  # kernel std / Glorot's std: absurdly large from here
WEIGHT_SCALE_LOW = 1e-2  # ... absurdly small (but not zero) below this
NEGATIVE_BIAS = -0.5  # a ReLU unit's bias at or below this keeps it off for most inputs
NEGATIVE_BIAS_SHARE = 0.25  # ... a finding when this share of a layer's units have one
INITIAL_LOSS_RATIO = 2.0  # loss above this many times ln(C) (and INITIAL_LOSS_MARGIN above
INITIAL_LOSS_MARGIN = 1.0  # it) is far worse than guessing


def glorot_std(shape: tuple[int, ...]) -> float:
    """The std Glorot (Keras' default) initialisation gives a kernel of this shape."""
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in = shape[-2] * receptive if len(shape) >= 2 else shape[0]
    fan_out = shape[-1] * receptive
    return math.sqrt(2.0 / max(fan_in + fan_out, 1))


def _kernels(ev: Evidence):
    for path, layer in ev.layers:
        if getattr(layer, "layers", None):
            continue
        for v in getattr(layer, "weights", []):
            name = v.path.rsplit("/", 1)[-1]
            if name in ("kernel", "depthwise_kernel", "pointwise_kernel") and len(v.shape) >= 2:
                yield path, layer, name, np.asarray(v.numpy(), np.float64)


@check("weight_scale", ("bad_init", "nan_inf"), needs=("model",), cheap=True)
def weight_scale(ev: Evidence) -> list[Finding]:
    """Kernels that are not finite, all zero, or of absurd scale."""
    out = []
    where = {"page": "overview", "panel": "layer_weights_histogram"}
    nonfinite: list[tuple[str, str, int, int]] = []
    for path, _, name, w in _kernels(ev):
        bad = int((~np.isfinite(w)).sum())
        if bad:
            nonfinite.append((path, name, bad, int(w.size)))
            continue
        std, ref = float(w.std()), glorot_std(tuple(w.shape))
        evidence = {"variable": name, "std": std, "glorot_std": ref, "ratio": std / ref,
                    "max_abs": float(np.abs(w).max())}
        if not np.any(w) and path not in ev.output_layers:
            out.append(Finding(
                "weight_scale", "bad_init", "warning", path, evidence,
                f"Every weight of {path}'s {name} is 0. Its units all compute the same thing "
                "and get the same gradient, so they never become different (and the layers "
                "before it get no gradient at all).",
                "Initialise kernels randomly (Keras' default glorot_uniform, or he_normal "
                "before ReLUs); zeros are fine for biases only.", **where))
        elif std > WEIGHT_SCALE_HIGH * ref:
            out.append(Finding(
                "weight_scale", "bad_init", "warning", path, evidence,
                f"{path}'s {name} has std {std:.3g}, {std / ref:.0f}x what Glorot "
                f"initialisation gives this shape ({ref:.3g}): outputs grow layer after layer, "
                "saturating or exploding.",
                "Use Keras' default initialiser (glorot_uniform; he_normal before ReLUs), or "
                "check what wrote these weights.", **where))
        elif 0 < std < WEIGHT_SCALE_LOW * ref:
            out.append(Finding(
                "weight_scale", "bad_init", "warning", path, evidence,
                f"{path}'s {name} has std {std:.3g}, {ref / std:.0f}x smaller than Glorot "
                f"initialisation gives this shape ({ref:.3g}): signals and gradients shrink "
                "through it.",
                "Use Keras' default initialiser (glorot_uniform; he_normal before ReLUs).",
                **where))
    if nonfinite:  # said once, at the first layer
        path, name, bad, size = nonfinite[0]
        more = f" (and the kernels of {len(nonfinite) - 1} more layers)" \
            if len(nonfinite) > 1 else ""
        out.append(Finding(
            "weight_scale", "nan_inf", "error", path,
            {"variable": name, "nonfinite": bad, "size": size, "layers_affected": len(nonfinite)},
            f"{bad:,} of the {size:,} weights of {path}'s {name}{more} are NaN or infinite: "
            "every output is NaN.",
            "Training diverged before this was saved: lower the learning rate, clip gradients "
            "(clipnorm=1.0) and retrain from a finite checkpoint.", **where))
    return out


def relu_layers(ev: Evidence) -> dict[str, str]:
    """`{path of a layer with a bias: the ReLU layer after it}` for layers whose output goes
    through a ReLU-family activation (their own, or an Activation/ReLU layer right after)."""
    found = {}
    layers = [(p, layer) for p, layer in ev.layers if not getattr(layer, "layers", None)]
    for i, (path, layer) in enumerate(layers):
        act = activation_name(layer)
        if act in RELU_FAMILY and getattr(layer, "bias", None) is not None:
            found[path] = path
        elif act == "linear" and getattr(layer, "bias", None) is not None and i + 1 < len(layers):
            nxt_path, nxt = layers[i + 1]
            if activation_name(nxt) in RELU_FAMILY and not getattr(nxt, "weights", None):
                found[path] = nxt_path
    return found


@check("negative_bias", "dead_units", needs=("model",), cheap=True)
def negative_bias(ev: Evidence) -> list[Finding]:
    """Large negative biases before ReLUs: units that start (or ended) switched off."""
    out = []
    layers = dict(ev.layers)
    for path, relu in relu_layers(ev).items():
        b = np.asarray(layers[path].bias.numpy(), np.float64).ravel()
        share = float((b <= NEGATIVE_BIAS).mean()) if b.size else 0.0
        if share < NEGATIVE_BIAS_SHARE:
            continue
        out.append(Finding(
            "negative_bias", "dead_units", "warning", path,
            {"units": int(b.size), "negative_units": int((b <= NEGATIVE_BIAS).sum()),
             "share": share, "median_bias": float(np.median(b)), "limit": NEGATIVE_BIAS},
            f"{share:.0%} of {path}'s units have a bias of {NEGATIVE_BIAS:g} or less (median "
            f"{np.median(b):.3g}) before the ReLU{'' if relu == path else f' ({relu})'}: their "
            "input must beat that before they output anything, so most stay at 0 and get no "
            "gradient (dead ReLUs).",
            "Initialise biases at 0 (Keras' default) or slightly positive; a leaky ReLU or a "
            "lower learning rate keeps units from dying during training.",
            page="overview", panel="layer_weights_histogram"))
    return out


def prediction_loss_value(h, probs: np.ndarray, y: np.ndarray) -> float | None:
    """The cross-entropy of the outputs `probs` (as predicted, not their logits) against
    labels `y`, the way Keras computes it from probabilities; `None` for other losses."""
    eps = 1e-7
    p = np.clip(np.asarray(probs, np.float64), eps, 1 - eps)
    y = np.asarray(y)
    if h.loss in SPARSE_CE or (h.loss == "crossentropy" and y.ndim < p.ndim):
        idx = y.reshape(len(y)).astype(np.int64) if y.ndim <= 1 or y.shape[-1] == 1 else None
        if idx is None or p.ndim != 2 or idx.min() < 0 or idx.max() >= p.shape[1]:
            return None
        p = p / p.sum(1, keepdims=True)
        return float(-np.log(p[np.arange(len(idx)), idx]).mean())
    if h.loss in CATEGORICAL_CE and y.shape == p.shape:
        p = p / p.sum(-1, keepdims=True)
        return float(-(y * np.log(p)).sum(-1).mean())
    if h.loss in BINARY_CE:
        y = y.reshape(p.shape) if y.size == p.size else None
        if y is None:
            return None
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
    return None


@check("initial_loss", "bad_init", needs=("compile", "labels", "predictions"))
def initial_loss(ev: Evidence) -> list[Finding]:
    """A classifier's loss at the file's weights far above ln(C), a uniform guess's."""
    out = []
    for h, probs in zip(ev.heads, ev.predictions, strict=True):
        classes = h.classes
        y = ev.labels[h.index]
        if y is None or not classes or h.activation not in ("softmax", "sigmoid") or \
                (h.activation == "sigmoid") != (h.units == 1):  # one_unit_softmax's case
            continue
        loss = prediction_loss_value(h, probs, y[:len(probs)])
        if loss is None:
            continue
        chance = math.log(classes)
        if loss > max(INITIAL_LOSS_RATIO * chance, chance + INITIAL_LOSS_MARGIN):
            out.append(Finding(
                "initial_loss", "bad_init", "warning", h.layer,
                {"output": h.name, "loss": loss, "ln_classes": chance, "classes": classes,
                 "examples": int(len(probs))},
                f"At the file's weights the loss of {h.name!r} is {loss:.3g}, far above "
                f"ln({classes}) = {chance:.3g}, what a model that guesses uniformly scores: its "
                "outputs are confidently wrong. (A trained model's loss is below ln(C), and an "
                "untrained one's close to it.)",
                "If the model is untrained, its initial weights are too large (use Keras' "
                "default initialisers; a zero-initialised last layer starts at ln(C)). If it "
                "was trained, training went wrong: see the training curves.",
                page="gradients", panel="gradient_norms"))
    return out
