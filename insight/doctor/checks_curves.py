"""Checks of the training curves: NaN in the loss, divergence and oscillation (learning rate
too high), a loss that does not fall or only creeps (too low), accuracy stuck at chance,
overfitting with its epoch, a large train/validation gap, and underfitting.

The curves come from `insight.read_scalars` (a TensorBoard logdir, a CSVLogger CSV or a
history JSON; the training and validation sides named as `insight.curves.splits` reads
them), or, during `fit`, from `DoctorCallback`'s history so far. The overfitting verdict is
`insight.curves.analysis.train_val_verdict`, the Training page's.

Example:

>>> [f.check for f in diagnose(loaded, logdir="logs/").findings]  # doctest: +SKIP
['loss_diverging', 'loss_nan']
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from insight.curves.analysis import train_val_verdict
from insight.doctor.evidence import Evidence, Unavailable
from insight.doctor.findings import Finding
from insight.doctor.registry import check
from insight.doctor.series import finite as _finite
from insight.doctor.series import last_finite, training_series

__all__ = ["MIN_POINTS", "DIVERGE_FACTOR", "EXPLODE_FACTOR", "EXPLODE_ERROR", "SPIKE_RATIO",
           "SPIKE_SHARE", "ZIGZAG_SHARE", "NOT_LEARNING_DROP", "LOW_LOSS_SHARE", "CREEP_DROP",
           "STEADY_SHARE", "CHANCE_MARGIN", "UNDERFIT_SHARE", "PLATEAU", "GAP_LOSS",
           "training_series", "last_finite"]

MIN_POINTS = 3  # points a curve needs before its shape is judged
DIVERGE_FACTOR = 3.0  # a loss ending this many times above its best (and above its start)
EXPLODE_FACTOR = 10.0  # ... or a classifier's loss reaching this many times ln(C) at any point
EXPLODE_ERROR = 100.0  # ... an error from this many times ln(C) (a warning below)
SPIKE_RATIO = 1.5  # a point this many times above the best so far is a spike,
SPIKE_SHARE = 0.1  # ... when it also undoes this share of the fall made so far
ZIGZAG_SHARE = 0.4  # ... or this share of steps going up (each by 5% of the level on average)
NOT_LEARNING_DROP = 0.05  # a best loss less than 5% below the first: not learning
LOW_LOSS_SHARE = 0.3  # ... unless it started below this share of ln(C) (already trained)
CREEP_DROP = 0.3  # falling steadily by less than this in all, still falling: rate too low
STEADY_SHARE = 0.8  # share of steps that go down for "steadily"
CHANCE_MARGIN = 0.05  # accuracy within this of chance is at chance
UNDERFIT_SHARE = 0.5  # a final training loss above this share of ln(C), flat: underfitting
PLATEAU = 0.02  # relative improvement over the last points under which a curve is flat
GAP_LOSS = 0.1  # a classifier's loss gap must also exceed this share of ln(C)
def _series(ev: Evidence) -> list[dict[str, Any]]:
    found = [g for g in ev.shared("training_series", lambda: training_series(ev.curves))
             if "loss" in g]
    if not found:
        raise Unavailable("the training log has no training loss")
    return found


def _classes(ev: Evidence) -> int | None:
    heads = [h for h in ev.heads if h.classes]
    return heads[0].classes if len(ev.heads) == 1 and heads else None


def _unit(steps: np.ndarray) -> str:
    return "epoch" if len(steps) < 1000 else "step"


def _ev(g: dict[str, Any], **more) -> dict:
    return ({"run": g["group"]} if g["group"] not in ("", ".") else {}) | more


def _plot(ev: Evidence, name: str, g: dict[str, Any], mark: int | None, text: str,
          metric: str = "loss") -> None:
    lines = [{"name": f"training {metric}", "x": g[metric][0].tolist(),
              "y": g[metric][1].tolist()}]
    if f"val_{metric}" in g:
        lines.append({"name": f"validation {metric}", "x": g[f"val_{metric}"][0].tolist(),
                      "y": g[f"val_{metric}"][1].tolist()})
    run = f" ({g['group']})" if g["group"] not in ("", ".") else ""
    ev.plot(name, None, {"kind": "curve", "title": f"{metric.capitalize()}{run}",
                         "lines": lines, "mark": mark, "mark_text": text, "y_title": metric,
                         "x_title": _unit(g[metric][0])})


_WHERE = {"page": "training", "panel": "training_curves"}


@check("loss_nan", "nan_inf", needs=("curves",), cheap=True)
def loss_nan(ev: Evidence) -> list[Finding]:
    """NaN or infinite values in the loss, with the step where they start."""
    out = []
    for g in _series(ev):
        for key in ("loss", "val_loss"):
            if key not in g:
                continue
            steps, values = g[key]
            bad = np.flatnonzero(~np.isfinite(values))
            if not bad.size or (key == "val_loss" and out and
                                out[-1].evidence.get("run", ".") == g["group"]):
                continue  # validation NaN follows training's: said once
            step = int(steps[bad[0]])
            before = values[:bad[0]]
            side = "training" if key == "loss" else "validation"
            out.append(Finding(
                "loss_nan", "nan_inf", "error", None,
                _ev(g, series=key, step=step, points=int(bad.size),
                    last_finite=float(before[-1]) if before.size else float("nan")),
                f"The {side} loss is NaN or infinite from {_unit(steps)} {step} on "
                f"({bad.size} of {len(values)} points)"
                + (f", after {before[-1]:.3g}" if before.size else ", from the start")
                + ": the weights became NaN, and nothing after that step means anything.",
                "Lower the learning rate (a loss that rises before NaN is diverging), clip "
                "gradients (clipnorm=1.0), check the data for NaN, and look for log(0) or a "
                "division by 0 in custom losses.", **_WHERE))
            if key == "loss":
                _plot(ev, "loss_nan", g, step, f"NaN from {_unit(steps)} {step}")
    return out


@check("loss_diverging", "learning_rate_high", needs=("curves",), cheap=True)
def loss_diverging(ev: Evidence) -> list[Finding]:
    """A loss that climbs far above its best, or rises and turns NaN."""
    out = []
    for g in _series(ev):
        steps, values = g["loss"]
        fs, fv = _finite(g["loss"])
        if not len(fv):
            out += _nan_from_the_start(ev, g)
            continue
        best = int(np.argmin(fv))
        turned_nan = not np.isfinite(values[-1]) and fv[-1] > fv[0]
        classes = _classes(ev)
        peak = int(np.argmax(fv))
        exploded = classes is not None and fv[peak] >= EXPLODE_FACTOR * math.log(classes)
        climbed = (fv[-1] >= DIVERGE_FACTOR * fv[best] and fv[-1] > fv[0] and len(fv) >= 3) \
            or turned_nan
        if not (climbed or exploded):
            continue
        nonfinite = bool(ev.dataset is not None and ev.dataset.nonfinite)
        at = int(fs[best]) if climbed else int(fs[peak])
        what = (f"The training loss fell to {fv[best]:.3g} at {_unit(steps)} {at}, then climbed "
                f"to {fv[-1]:.3g}" + (" and turned NaN" if turned_nan else "") if climbed else
                f"The training loss reached {fv[peak]:.3g} at {_unit(steps)} {at}, over "
                f"{EXPLODE_FACTOR:g} times ln({classes}) = {math.log(classes):.3g} (what a "
                "model that guesses scores): it exploded")
        severe = climbed or fv[peak] >= EXPLODE_ERROR * math.log(classes)
        out.append(Finding(
            "loss_diverging", "learning_rate_high", "error" if severe else "warning", None,
            _ev(g, best_step=int(fs[best]), best=float(fv[best]), peak=float(fv[peak]),
                last=float(fv[-1]), first=float(fv[0]), turned_nan=int(turned_nan)),
            what + ": training is diverging, the classic sign of a learning rate too high"
            + (" (or of the NaN in the inputs)." if nonfinite else "." if climbed else
               ", or of inputs or initial weights far too large (they make every step too "
               "big in the same way)."),
            "Lower the learning rate 3-10x (or use the learning-rate range test: insight "
            "doctor --train-probe), and clip gradients (clipnorm=1.0).", **_WHERE))
        _plot(ev, "loss_diverging", g, at, f"best at {_unit(steps)} {at}, then diverging"
              if climbed else f"exploded at {_unit(steps)} {at}")
    return out


def _clean_data(ev: Evidence) -> bool:
    """Whether the data is known, with finite inputs and labels."""
    if ev.dataset is None or ev.dataset.nonfinite:
        return False
    try:
        labels = ev.labels
    except Unavailable:
        return True
    return all(y is None or y.dtype.kind not in "fc" or np.isfinite(y).all() for y in labels)


def _nan_from_the_start(ev: Evidence, g: dict[str, Any]) -> list[Finding]:
    """A loss NaN from its first point on, on data without NaN: blown up at once."""
    steps, values = g["loss"]
    if len(values) < 1 or not _clean_data(ev):
        return []
    return [Finding(
        "loss_diverging", "learning_rate_high", "error", None,
        _ev(g, first_step=int(steps[0]), points=int(len(values)), finite_points=0),
        f"The training loss is NaN from {_unit(steps)} {int(steps[0])} on, and the inputs and "
        "labels hold no NaN: the very first updates blew the weights up. That is a learning "
        "rate far too high (or an overflow in a custom layer or loss).",
        "Lower the learning rate 10x or more (the learning-rate range test, insight doctor "
        "--train-probe, finds where it diverges), and clip gradients (clipnorm=1.0).",
        **_WHERE)]


@check("loss_oscillating", "learning_rate_high", needs=("curves",), cheap=True)
def loss_oscillating(ev: Evidence) -> list[Finding]:
    """A loss that jumps up and down, or spikes far above its best so far."""
    out = []
    for g in _series(ev):
        fs, fv = _finite(g["loss"])
        if len(fv) < 5 or fv[-1] >= DIVERGE_FACTOR * fv.min():  # diverging: said there
            continue
        running = np.minimum.accumulate(fv)
        progress = np.maximum(fv[0] - running[:-1], 0.0)  # how far it had come, so far
        spikes = np.flatnonzero((fv[1:] >= SPIKE_RATIO * running[:-1]) &
                                (fv[1:] - running[:-1] >= SPIKE_SHARE * progress)) + 1
        diffs = np.diff(fv)
        ups = diffs > 0
        level = np.maximum(np.abs(fv[:-1]), 1e-12)
        zigzag = ups.mean() >= ZIGZAG_SHARE and (diffs[ups] / level[ups]).mean() >= 0.05 \
            if ups.any() else False
        if not spikes.size and not zigzag:
            continue
        at = int(fs[spikes[0]]) if spikes.size else int(fs[1:][ups][0])
        out.append(Finding(
            "loss_oscillating", "learning_rate_high", "warning", None,
            _ev(g, spikes=int(spikes.size), rising_steps=int(ups.sum()), steps=int(len(diffs)),
                first_spike=at),
            (f"The training loss spikes {spikes.size} time(s) to {SPIKE_RATIO:g}x its best so "
             f"far (first at {_unit(fs)} {at})" if spikes.size else
             f"The training loss goes up in {ups.sum()} of {len(diffs)} steps")
            + ": the updates overshoot, a sign of a learning rate too high.",
            "Lower the learning rate 3x, or use a schedule that decays it; gradient clipping "
            "(clipnorm=1.0) tames single spikes.", **_WHERE))
        _plot(ev, "loss_oscillating", g, at, "spike" if spikes.size else "rising step")
    return out


def _already_low(ev: Evidence, loss: float) -> bool:
    classes = _classes(ev)
    return classes is not None and loss < LOW_LOSS_SHARE * math.log(classes)


@check("loss_not_decreasing", "not_learning", needs=("curves",), cheap=True)
def loss_not_decreasing(ev: Evidence) -> list[Finding]:
    """A training loss that never falls below where it started."""
    out = []
    for g in _series(ev):
        fs, fv = _finite(g["loss"])
        if len(fv) < MIN_POINTS or _already_low(ev, fv[0]):
            continue
        drop = (fv[0] - fv.min()) / max(abs(fv[0]), 1e-12)
        if drop >= NOT_LEARNING_DROP or fv[-1] >= DIVERGE_FACTOR * fv.min():
            continue
        out.append(Finding(
            "loss_not_decreasing", "not_learning", "warning", None,
            _ev(g, first=float(fv[0]), best=float(fv.min()), last=float(fv[-1]), drop=float(drop),
                points=int(len(fv))),
            f"Over {len(fv)} {_unit(fs)}s the training loss never got more than {drop:.1%} "
            f"below its start ({fv[0]:.3g} → best {fv.min():.3g}): the model is not learning.",
            "Check the setup findings first (loss and output, labels, input scale); then the "
            "learning rate (too low, or so high the loss cannot settle), and dead or saturated "
            "layers blocking the gradient.", **_WHERE))
        _plot(ev, "loss_not_decreasing", g, None, "")
    return out


@check("loss_creeping", "learning_rate_low", needs=("curves",), cheap=True)
def loss_creeping(ev: Evidence) -> list[Finding]:
    """A loss that falls steadily but very slowly, and is still falling at the end."""
    out = []
    for g in _series(ev):
        fs, fv = _finite(g["loss"])
        if len(fv) < 5 or _already_low(ev, fv[-1]):
            continue
        drop = (fv[0] - fv[-1]) / max(abs(fv[0]), 1e-12)
        steps = -np.diff(fv) / np.maximum(np.abs(fv[:-1]), 1e-12)
        steady = (steps > 0).mean() >= STEADY_SHARE
        still = steps[-2:].mean() >= 0.5 * drop / len(steps)
        if not (NOT_LEARNING_DROP <= drop < CREEP_DROP and steady and still):
            continue
        out.append(Finding(
            "loss_creeping", "learning_rate_low", "warning", None,
            _ev(g, first=float(fv[0]), last=float(fv[-1]), drop=float(drop),
                per_step=float(steps.mean()), points=int(len(fv))),
            f"The training loss falls steadily but slowly: {drop:.0%} in {len(fv)} "
            f"{_unit(fs)}s ({fv[0]:.3g} → {fv[-1]:.3g}), and it is still falling at the same "
            "pace: the learning rate is likely too low.",
            "Raise the learning rate 3-10x (the learning-rate range test, insight doctor "
            "--train-probe, suggests one), or train much longer.", **_WHERE))
        _plot(ev, "loss_creeping", g, None, "")
    return out


def _chance(ev: Evidence) -> float | None:
    classes = _classes(ev)
    if classes is None:
        return None
    try:
        y = ev.labels[0]
    except Unavailable:
        return 1.0 / classes
    from insight.doctor.checks_data import class_counts

    counts = class_counts(y, ev.heads[0].units) if y is not None else None
    return float(counts.max() / counts.sum()) if counts is not None and counts.sum() else \
        1.0 / classes


@check("accuracy_at_chance", ("not_learning", "loss_activation_mismatch"), needs=("curves",),
       cheap=True)
def accuracy_at_chance(ev: Evidence) -> list[Finding]:
    """Training accuracy stuck at chance (while the loss may fall)."""
    chance = _chance(ev)
    if chance is None:
        return []
    out = []
    for g in _series(ev):
        if "accuracy" not in g:
            continue
        fs, acc = _finite(g["accuracy"])
        if len(acc) < MIN_POINTS or acc[-1] > chance + CHANCE_MARGIN:
            continue
        _, loss = _finite(g["loss"])
        fell = len(loss) >= 2 and loss[-1] <= 0.5 * loss[0]
        out.append(Finding(
            "accuracy_at_chance", "loss_activation_mismatch" if fell else "not_learning",
            "error" if fell else "warning", None,
            _ev(g, accuracy=float(acc[-1]), chance=chance, points=int(len(acc)),
                loss_first=float(loss[0]) if len(loss) else float("nan"),
                loss_last=float(loss[-1]) if len(loss) else float("nan")),
            f"After {len(acc)} {_unit(fs)}s the training accuracy is {acc[-1]:.1%}, no better "
            f"than chance ({chance:.1%}: always predicting the largest class)"
            + (f", although the loss fell from {loss[0]:.3g} to {loss[-1]:.3g}: the loss is "
               "not measuring the predictions. Keras computes cross-entropy from the logits "
               "behind a softmax or sigmoid, so a wrong output activation (one softmax unit, "
               "a sigmoid under categorical cross-entropy) trains a loss while every "
               "prediction stays wrong." if fell else ": the model is not learning."),
            "Check the output activation and loss (see the setup findings), then the labels "
            "and the learning rate." if fell else
            "Check the setup findings first (loss and output, labels, input scale), then the "
            "learning rate.", **_WHERE))
        _plot(ev, "accuracy_at_chance", g, None, "", metric="accuracy")
    return out


def _verdict(g: dict[str, Any]):
    for metric, direction in (("loss", "min"), ("accuracy", "max")):
        if metric in g and f"val_{metric}" in g:
            (ts, tv), (vs, vv) = g[metric], g[f"val_{metric}"]
            return metric, train_val_verdict(ts, tv, vs, vv, direction, unit=_unit(vs))
    return None, None


@check("overfitting", "overfitting", needs=("curves",), cheap=True)
def overfitting(ev: Evidence) -> list[Finding]:
    """Validation getting worse while training improves, from the epoch it starts."""
    out = []
    for g in _series(ev):
        metric, v = _verdict(g)
        if v is None or v.kind != "overfitting":
            continue
        out.append(Finding(
            "overfitting", "overfitting", "warning", None,
            _ev(g, metric=metric, onset=int(v.onset), train_last=v.train_last or float("nan"),
                val_last=v.val_last or float("nan")),
            v.detail + " The model memorises the training data from there on.",
            f"Keep the weights from {_unit(g[metric][0])} {v.onset} (EarlyStopping("
            "restore_best_weights=True)), and add regularisation: more data or augmentation, "
            "dropout, weight decay, a smaller model.",
            page="training", panel="train_val_verdicts"))
        _plot(ev, "overfitting", g, int(v.onset), f"overfitting from {_unit(g[metric][0])} "
              f"{v.onset}", metric=metric)
    return out


def _gap_verdict(ev: Evidence, g: dict[str, Any]):
    """The gap verdict: on accuracy when both sides have one (a loss ratio blows up as
    losses near 0), else on the loss, whose validation must also be `GAP_LOSS` x ln(C)
    above training's for a classifier."""
    if "accuracy" in g and "val_accuracy" in g:
        (ts, tv), (vs, vv) = g["accuracy"], g["val_accuracy"]
        return "accuracy", train_val_verdict(ts, tv, vs, vv, "max", unit=_unit(vs))
    if "val_loss" not in g:
        return None, None
    (ts, tv), (vs, vv) = g["loss"], g["val_loss"]
    v = train_val_verdict(ts, tv, vs, vv, "min", unit=_unit(vs))
    classes = _classes(ev)
    if v.kind == "gap" and classes and v.val_last is not None and v.train_last is not None \
            and v.val_last - v.train_last < GAP_LOSS * math.log(classes):
        return "loss", None
    return "loss", v


@check("generalization_gap", "overfitting", needs=("curves",), cheap=True)
def generalization_gap(ev: Evidence) -> list[Finding]:
    """Validation far worse than training, without getting worse."""
    out = []
    for g in _series(ev):
        metric, v = _gap_verdict(ev, g)
        if v is None or v.kind != "gap":
            continue
        out.append(Finding(
            "generalization_gap", "overfitting", "warning", None,
            _ev(g, metric=metric, gap=v.gap if v.gap is not None else float("nan"),
                train_last=v.train_last or float("nan"), val_last=v.val_last or float("nan")),
            v.detail + " The model does much better on what it trained on than on new data.",
            "Regularise (more data or augmentation, dropout, weight decay), and check that "
            "the validation data comes from the same distribution as the training data.",
            page="training", panel="train_val_verdicts"))
    return out


@check("underfitting", "underfitting", needs=("curves",), cheap=True)
def underfitting(ev: Evidence) -> list[Finding]:
    """A training loss that levels off while still high."""
    classes = _classes(ev)
    if classes is None:
        return []
    chance_loss = math.log(classes)
    out = []
    for g in _series(ev):
        fs, fv = _finite(g["loss"])
        if len(fv) < 5:
            continue
        drop = (fv[0] - fv.min()) / max(abs(fv[0]), 1e-12)
        recent = (fv[-3] - fv[-1]) / max(abs(fv[-3]), 1e-12)
        if drop < NOT_LEARNING_DROP or fv[-1] <= UNDERFIT_SHARE * chance_loss or \
                recent >= PLATEAU or fv[-1] >= DIVERGE_FACTOR * fv.min():
            continue
        out.append(Finding(
            "underfitting", "underfitting", "warning", None,
            _ev(g, last=float(fv[-1]), ln_classes=chance_loss, recent_drop=float(recent),
                points=int(len(fv))),
            f"The training loss levels off at {fv[-1]:.3g}, over half of ln({classes}) = "
            f"{chance_loss:.3g} (a uniform guess's): the model cannot fit even its training "
            "data (underfitting).",
            "Give it more capacity (wider or deeper layers), train longer with a decaying "
            "learning rate, or remove heavy regularisation (dropout, weight decay).", **_WHERE))
        _plot(ev, "underfitting", g, None, "")
    return out
