"""Checks of how the model is set up to learn: its output activation against its loss, its
labels against both, and the optimizer's learning rate. Static: read from the file (or the
compiled model) and the labels, no pass through the model.

Keras 3 keeps the logits behind a softmax or sigmoid output and its cross-entropy losses
read them, so several of these mistakes train with a healthy-looking loss while the outputs
are wrong (a one-unit softmax is always 1.0): only a check of the setup itself finds them.

Example:

>>> from insight.doctor import diagnose
>>> [f.check for f in diagnose(loaded).findings]  # doctest: +SKIP
['softmax_binary_crossentropy']
"""

from __future__ import annotations

import numpy as np

from insight.doctor.evidence import Evidence, Unavailable
from insight.doctor.findings import Finding
from insight.doctor.heads import (
    ADAPTIVE,
    BINARY_CE,
    CATEGORICAL_CE,
    REGRESSION,
    SPARSE_CE,
    Head,
    optimizer_momentum,
)
from insight.doctor.registry import check

__all__ = ["ADAPTIVE_LR_HIGH", "SGD_LR_HIGH", "ADAPTIVE_LR_LOW", "SGD_LR_LOW", "head_labels"]

ADAPTIVE_LR_HIGH = 0.05  # Adam-like optimizers: rates from here up rarely train (default 1e-3)
SGD_LR_HIGH = 1.0  # SGD: from here up, rate / (1 - momentum) (default 0.01)
ADAPTIVE_LR_LOW = 1e-6  # ... and at or below these, weights hardly move
SGD_LR_LOW = 1e-5
_OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "nadam": "Nadam",
                    "adamax": "Adamax", "rmsprop": "RMSprop", "lion": "Lion", "lamb": "Lamb",
                    "adafactor": "Adafactor", "muon": "Muon"}


def _loss_class(h: Head) -> str:
    if h.loss in SPARSE_CE:
        return "SparseCategoricalCrossentropy"
    return "BinaryCrossentropy" if h.loss in BINARY_CE else "CategoricalCrossentropy"


def _where(h: Head) -> dict[str, str]:
    return {"page": "overview", "panel": "layer_details"}


def _evidence(h: Head, **more) -> dict:
    base = {"output": h.name, "activation": h.activation or "unknown", "units": h.units or 0,
            "loss": h.loss_text or h.loss or "none"}
    return {**base, **more}


def head_labels(ev: Evidence, h: Head) -> np.ndarray | None:
    """The labels of head `h`, or `None` when the data has none."""
    try:
        return ev.labels[h.index]
    except Unavailable:
        return None


@check("one_unit_softmax", "loss_activation_mismatch", needs=("model",), cheap=True)
def one_unit_softmax(ev: Evidence) -> list[Finding]:
    """A softmax over a single unit: its output is always 1.0."""
    return [Finding(
        "one_unit_softmax", "loss_activation_mismatch", "error", h.layer, _evidence(h),
        f"The output {h.name!r} is a softmax over one unit. A softmax makes its units sum to "
        "1, so a single unit is always exactly 1.0 whatever the input: every prediction is the "
        "same. Keras computes cross-entropy from the logits it keeps behind the softmax, so the "
        "training loss can still fall and look healthy.",
        "For two classes use one unit with a sigmoid activation and binary_crossentropy, or "
        "two softmax units with sparse_categorical_crossentropy.", **_where(h))
        for h in ev.heads if h.activation == "softmax" and h.units == 1]


@check("softmax_binary_crossentropy", "loss_activation_mismatch", needs=("compile",),
       cheap=True)
def softmax_binary_crossentropy(ev: Evidence) -> list[Finding]:
    """Binary cross-entropy on a softmax over more than two classes."""
    return [Finding(
        "softmax_binary_crossentropy", "loss_activation_mismatch", "error", h.layer,
        _evidence(h),
        f"The {h.units}-way softmax output {h.name!r} is trained with binary cross-entropy, "
        "which scores each unit as an independent yes/no probability. A softmax's units compete "
        f"(they sum to 1), so the loss pushes {h.units - 1} of them to 0 and rewards that; its "
        "'accuracy' is binary accuracy per unit, high even when the class is wrong.",
        "Compile with categorical_crossentropy (one-hot labels) or "
        "sparse_categorical_crossentropy (class-index labels).", **_where(h))
        for h in ev.heads if h.activation == "softmax" and (h.units or 0) > 2
        and h.loss in BINARY_CE]


@check("crossentropy_on_non_probabilities", "loss_activation_mismatch", needs=("compile",),
       cheap=True)
def crossentropy_on_non_probabilities(ev: Evidence) -> list[Finding]:
    """Cross-entropy on an output that is not the distribution the loss expects."""
    out = []
    for h in ev.heads:
        categorical = h.loss in SPARSE_CE | CATEGORICAL_CE
        if not (categorical or h.loss in BINARY_CE):
            continue
        name = "categorical" if categorical else "binary"
        if h.activation == "linear" and not h.from_logits:
            out.append(Finding(
                "crossentropy_on_non_probabilities", "loss_activation_mismatch", "error",
                h.layer, _evidence(h, from_logits="false"),
                f"The output {h.name!r} is linear (raw scores, any sign), and its {name} "
                "cross-entropy expects probabilities (from_logits=False): Keras clips the "
                "scores into (0, 1), so negative ones all count as 0 and the loss and its "
                "gradients are wrong.",
                f"Pass {_loss_class(h)}(from_logits=True) as the loss, or add a "
                f"{'softmax' if categorical else 'sigmoid'} activation to the last layer.",
                **_where(h)))
        elif categorical and h.activation == "sigmoid":
            one = h.units == 1
            out.append(Finding(
                "crossentropy_on_non_probabilities", "loss_activation_mismatch",
                "error" if one else "warning", h.layer, _evidence(h),
                (f"The output {h.name!r} is one sigmoid unit under categorical cross-entropy: "
                 "a distribution over one class is always certain, so the loss cannot tell "
                 "right from wrong and the model learns nothing." if one else
                 f"The output {h.name!r} has {h.units} sigmoid units (independent yes/no "
                 "probabilities) under categorical cross-entropy, which treats them as one "
                 "distribution. Keras computes the loss from the logits behind the sigmoid, so "
                 "training looks fine, but the outputs do not sum to 1: they are not the class "
                 "probabilities the loss trained."),
                "For one label per example use a softmax activation; for several labels per "
                "example keep the sigmoid and use binary_crossentropy."
                + (" For two classes: one sigmoid unit with binary_crossentropy." if one else ""),
                **_where(h)))
        elif categorical and h.activation in ("relu", "tanh", "elu", "selu", "softplus"):
            out.append(Finding(
                "crossentropy_on_non_probabilities", "loss_activation_mismatch", "warning",
                h.layer, _evidence(h),
                f"The output {h.name!r} ends in {h.activation}, which does not give "
                "probabilities, and is trained with categorical cross-entropy.",
                "Use a softmax activation on the last layer (or a linear one with "
                "from_logits=True).", **_where(h)))
    return out


@check("regression_loss_on_probabilities", "loss_activation_mismatch", needs=("compile",),
       cheap=True)
def regression_loss_on_probabilities(ev: Evidence) -> list[Finding]:
    """MSE or MAE on a classifier's probabilities."""
    out = []
    for h in ev.heads:
        if h.loss not in REGRESSION:
            continue
        y = head_labels(ev, h)
        binary = y is not None and y.size and np.isin(np.unique(y[np.isfinite(y)]),
                                                     (0, 1)).all()
        if h.activation == "softmax" or (h.activation == "sigmoid" and binary):
            out.append(Finding(
                "regression_loss_on_probabilities", "loss_activation_mismatch", "warning",
                h.layer, _evidence(h),
                f"The classifier output {h.name!r} ({h.activation}) is trained with "
                f"{h.loss_text or h.loss}, a regression loss. Its gradient vanishes as the "
                f"{h.activation} saturates, so a confidently wrong prediction gets almost no "
                "correction, and training is slow or stalls; cross-entropy's gradient does not "
                "fade that way.",
                "Use sparse_categorical_crossentropy (class indices) or "
                "categorical_crossentropy (one-hot) for a softmax, binary_crossentropy for a "
                "sigmoid.", **_where(h)))
    return out


@check("from_logits_contradiction", "loss_activation_mismatch", needs=("compile",), cheap=True)
def from_logits_contradiction(ev: Evidence) -> list[Finding]:
    """`from_logits=True` on an output that already applies softmax or sigmoid."""
    return [Finding(
        "from_logits_contradiction", "loss_activation_mismatch", "warning", h.layer,
        _evidence(h, from_logits="true"),
        f"The loss of {h.name!r} is told its inputs are logits (from_logits=True), but the "
        f"output already applies {h.activation}. Keras 3 happens to read the logits it keeps "
        f"behind the {h.activation}, so training works here; anywhere else (another backend, "
        f"an exported model, a loss on predict() outputs) {h.activation} is applied twice and "
        "the loss barely moves.",
        f"Either drop the {h.activation} from the last layer (keep from_logits=True and apply "
        f"{h.activation} when predicting), or set from_logits=False.", **_where(h))
        for h in ev.heads if h.from_logits and h.activation in ("softmax", "sigmoid")]


def _one_hot(y: np.ndarray) -> bool:
    if y.ndim < 2 or y.shape[-1] < 2 or not y.size:
        return False
    return bool(np.isin(y, (0, 1)).all() and np.allclose(y.sum(-1), 1))


def _indices(y: np.ndarray, units: int | None) -> bool:
    """Class indices: one per example (a trailing 1 allowed), whole numbers."""
    if y.ndim > 2 or (y.ndim == 2 and y.shape[-1] != 1) or not y.size:
        return False
    finite = y[np.isfinite(y)] if y.dtype.kind == "f" else y
    return bool(np.all(np.mod(finite, 1) == 0))


@check("label_encoding", "label_problem", needs=("compile", "labels"), cheap=True)
def label_encoding(ev: Evidence) -> list[Finding]:
    """Sparse vs one-hot labels contradicting the loss."""
    out = []
    for h in ev.heads:
        y = head_labels(ev, h)
        if y is None or not h.units or h.units < 2:
            continue
        ev_ = _evidence(h, label_shape=str(tuple(y.shape[1:])))
        if h.loss in SPARSE_CE and _one_hot(y):
            out.append(Finding(
                "label_encoding", "label_problem", "error", h.layer, ev_,
                f"The labels of {h.name!r} are one-hot rows, and sparse categorical "
                "cross-entropy expects one class index per example.",
                "Compile with categorical_crossentropy, or give class indices "
                "(labels.argmax(-1)).", **_where(h)))
        elif (h.loss in CATEGORICAL_CE - {"crossentropy"}) and _indices(y, h.units):
            out.append(Finding(
                "label_encoding", "label_problem", "error", h.layer, ev_,
                f"The labels of {h.name!r} are class indices, and categorical cross-entropy "
                f"expects one-hot rows of {h.units}: an index column is broadcast against all "
                f"{h.units} outputs, so the loss is computed against the wrong targets.",
                "Compile with sparse_categorical_crossentropy, or one-hot encode the labels "
                "(keras.utils.to_categorical).", **_where(h)))
        elif h.loss in REGRESSION and h.activation == "softmax" and _indices(y, h.units):
            out.append(Finding(
                "label_encoding", "label_problem", "error", h.layer, ev_,
                f"The labels of {h.name!r} are class indices and its loss, "
                f"{h.loss_text or h.loss}, compares each index with all {h.units} "
                "probabilities: the targets are meaningless.",
                "Use sparse_categorical_crossentropy.", **_where(h)))
    return out


@check("label_range", ("label_problem", "nan_inf"), needs=("labels",), cheap=True)
def label_range(ev: Evidence) -> list[Finding]:
    """Label values outside what the output can produce, or not finite."""
    out = []
    for h in ev.heads:
        y = head_labels(ev, h)
        if y is None or not y.size or y.dtype.kind not in "fiub":
            continue
        yf = y.astype(np.float64)
        bad = int((~np.isfinite(yf)).sum())
        if bad:
            out.append(Finding(
                "label_range", "nan_inf", "error", h.layer,
                _evidence(h, nonfinite_labels=bad, labels=int(yf.size)),
                f"{bad:,} labels of {h.name!r} are NaN or infinite: the loss of every batch "
                "holding one is NaN, and so are the weights after the next update.",
                "Drop or fix those examples before training.", page="doctor",
                panel="doctor_findings"))
            continue
        lo, hi = float(yf.min()), float(yf.max())
        ev_ = _evidence(h, label_min=lo, label_max=hi)
        sparse = (h.loss in SPARSE_CE or (h.activation == "softmax" and h.loss is None)) and \
            _indices(y, h.units)
        if sparse and h.units and (lo < 0 or hi > h.units - 1):
            out.append(Finding(
                "label_range", "label_problem", "error", h.layer, ev_,
                f"The labels of {h.name!r} run from {lo:g} to {hi:g}, and its {h.units} "
                f"outputs stand for classes 0 to {h.units - 1}: labels outside that are "
                "out of range (TensorFlow gives NaN or an error).",
                f"Number the classes 0 to {h.units - 1}, or give the last layer as many "
                "units as there are classes.", **_where(h)))
        elif (h.activation in ("sigmoid", "softmax") or h.loss in BINARY_CE) and \
                not sparse and (lo < 0 or hi > 1):
            out.append(Finding(
                "label_range", "label_problem", "error", h.layer, ev_,
                f"The labels of {h.name!r} run from {lo:g} to {hi:g}, and its "
                f"{h.activation or h.loss} output only reaches 0 to 1.",
                "Scale the targets to [0, 1] (or one-hot encode classes), or use a linear "
                "output with a regression loss.", **_where(h)))
    return out


@check("learning_rate_setting", ("learning_rate_high", "learning_rate_low"),
       needs=("model",), cheap=True)
def learning_rate_setting(ev: Evidence) -> list[Finding]:
    """An optimizer learning rate far outside what trains."""
    setting = ev.optimizer
    if setting is None or setting[1] is None:
        raise Unavailable("no optimizer or learning rate in the file")
    name, rate = setting
    adaptive = name in ADAPTIVE
    if name not in ADAPTIVE | {"sgd"}:
        return []
    momentum = 0.0 if adaptive else optimizer_momentum(ev.source)
    step = rate / (1.0 - momentum)  # SGD's steps once its momentum builds up
    high, low = (ADAPTIVE_LR_HIGH, ADAPTIVE_LR_LOW) if adaptive else (SGD_LR_HIGH, SGD_LR_LOW)
    evidence = {"optimizer": name, "learning_rate": rate, "momentum": momentum,
                "effective_rate": step, "limit": high if step >= high else low}
    where = {"page": "training", "panel": "training_curves"}
    said = f"{rate:g}" + (f" with momentum {momentum:g} (steps of {step:g} once it builds up)"
                          if momentum else "")
    name = _OPTIMIZER_NAMES.get(name, name)
    if step >= high:
        return [Finding(
            "learning_rate_setting", "learning_rate_high", "warning", None, evidence,
            f"The {name} optimizer's learning rate is {said}; for {name} rates from {high:g} "
            "up make the loss jump around or diverge (its default is "
            f"{0.001 if adaptive else 0.01:g}).",
            f"Lower it to about {0.001 if adaptive else 0.01:g}, or run the learning-rate "
            "range test (insight doctor --train-probe) to pick one.", **where)]
    if step <= low:
        return [Finding(
            "learning_rate_setting", "learning_rate_low", "warning", None, evidence,
            f"The {name} optimizer's learning rate is {said}: at or below {low:g} the "
            "weights hardly move and the loss creeps down for a very long time.",
            f"Raise it to about {0.001 if adaptive else 0.01:g}, or run the learning-rate "
            "range test (insight doctor --train-probe).", **where)]
    return []
