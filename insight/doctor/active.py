"""Active checks, run only when asked (`diagnose(..., train_probe=True)`, `insight doctor
--train-probe`, the Doctor page's button): they train a COPY of the model
(`keras.models.clone_model` with the file's weights; the loaded model is never changed) with
the file's loss.

- `overfit_one_batch`: can the copy memorise one small batch in a few dozen steps? A model
  that cannot has a bug in its setup, whatever the curves say.
- `lr_range_test`: on a freshly initialised copy (the rate is for training from scratch),
  the learning rate swept up exponentially over ~100 steps (as fast.ai's LR finder does):
  where the smoothed loss falls fastest (halfway down its fall, a good rate) and where it
  diverges (the ceiling), compared with the file's rate.

Example:

>>> report = diagnose(loaded, train_probe=True)  # doctest: +SKIP
>>> [f.check for f in report.findings if f.check == "lr_range_test"]  # doctest: +SKIP
['lr_range_test']
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from insight.doctor.evidence import Evidence, Unavailable
from insight.doctor.findings import Finding
from insight.doctor.registry import check

__all__ = ["OVERFIT_ROWS", "OVERFIT_STEPS", "OVERFIT_LEARNING_RATE", "OVERFIT_SHARE",
           "OVERFIT_STUCK",
           "LR_STEPS", "LR_ROWS", "LR_START", "LR_END", "LR_DIVERGE", "LR_SKIP", "LR_MIN_FALL",
           "model_copy",
           "lr_sweep"]

OVERFIT_ROWS = 16  # the one batch
OVERFIT_STEPS = 100  # ... trained this many steps
OVERFIT_LEARNING_RATE = 3e-3  # with Adam at this rate
OVERFIT_SHARE = 0.1  # memorised: the loss ends below this share of its start (or near 0)
OVERFIT_STUCK = 0.5  # ... a warning when it does not even fall below this share
LR_STEPS = 100  # the range test's steps
LR_ROWS = 32  # rows per step
LR_START, LR_END = 1e-7, 10.0  # the swept range
LR_DIVERGE = 4.0  # the sweep stops when the smoothed loss passes this many times its best
LR_SKIP = 10  # first steps left out (the smoothed loss is still settling)
LR_MIN_FALL = 0.01  # a fall of less than this share of the loss is no fall


def model_copy(ev: Evidence, *, fresh: bool = False):
    """A copy of the model with the file's weights, or freshly initialised ones (`fresh`);
    the original is never trained.

    Raises:
        Unavailable: the model cannot be cloned (a subclassed model without a config).
    """
    import keras

    try:
        clone = keras.models.clone_model(ev.model)
        if not fresh:
            clone.set_weights(ev.model.get_weights())
    except Exception as exc:  # noqa: BLE001  any failure means: no copy to train
        raise Unavailable(f"the model cannot be copied to train ({type(exc).__name__})") \
            from None
    return clone


def _batch(ev: Evidence, start: int, rows: int, model: Any) -> tuple[Any, Any]:
    from insight.probe.capture import as_inputs

    ds = ev.data()
    idx = [(start + i) % len(ds) for i in range(min(rows, len(ds)))]
    part = ds.take(idx)
    return as_inputs(part.x, model), part.y


def _trainer(ev: Evidence, clone: Any, optimizer: Any):
    """`step(x, y) -> loss`: one compiled training step of `clone` on the file's loss."""
    import tensorflow as tf

    from insight.probe.losses import model_loss, output_items

    x0, y0 = _batch(ev, 0, 2, clone)
    plan = model_loss(ev.source, y0, clone(x0, training=False))
    if not plan.terms:
        raise Unavailable("no output has a loss to train")
    variables = list(clone.trainable_variables)
    optimizer.build(variables)

    @tf.function(reduce_retracing=True)
    def step(x, ys):
        with tf.GradientTape() as tape:
            outs = [o for _, o in output_items(clone(x, training=False), clone)]
            loss = tf.add_n([t.weight * tf.reduce_mean(t.fn(y, outs[t.index]))
                             for t, y in zip(plan.terms, ys, strict=True)])
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    def run(x, y) -> float:
        return float(step(x, [tf.constant(a) for a in plan.labels(y)]))

    return run


def _accuracy(clone: Any, x: Any, y: Any, ev: Evidence) -> float | None:
    h = ev.heads[0]
    if len(ev.heads) != 1 or not h.classes or y is None:
        return None
    probs = np.asarray(clone(x, training=False), np.float64).reshape(len(y), -1)
    pred = (probs[:, 0] > 0.5).astype(int) if probs.shape[1] == 1 else probs.argmax(1)
    y = np.asarray(y)
    true = y.argmax(1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(len(y)).astype(int)
    return float((pred == true).mean())


@check("overfit_one_batch", "not_learning", needs=("train_probe",))
def overfit_one_batch(ev: Evidence) -> list[Finding]:
    """Can a copy of the model memorise one small batch?"""
    import keras

    clone = model_copy(ev)
    step = _trainer(ev, clone, keras.optimizers.Adam(OVERFIT_LEARNING_RATE))
    x, y = _batch(ev, 0, OVERFIT_ROWS, clone)
    losses = [step(x, y) for _ in range(OVERFIT_STEPS)]
    first, last = losses[0], losses[-1]
    acc = _accuracy(clone, x, y, ev)
    memorised = math.isfinite(last) and (last <= OVERFIT_SHARE * first or last < 0.01
                                         or acc == 1.0)
    ok = memorised or (math.isfinite(last) and last <= OVERFIT_STUCK * first)
    rows = len(next(iter(x.values())) if isinstance(x, dict) else x)
    evidence = {"rows": rows, "steps": OVERFIT_STEPS, "first_loss": first, "last_loss": last,
                "accuracy": acc if acc is not None else "n/a",
                "learning_rate": OVERFIT_LEARNING_RATE}
    ev.plot("overfit_one_batch", None, {
        "kind": "curve", "title": f"Loss of a copy trained on {rows} examples",
        "lines": [{"name": "loss on the batch", "x": list(range(1, len(losses) + 1)),
                   "y": losses}], "mark": None, "mark_text": "", "y_title": "loss",
        "x_title": "step"})
    if ok:
        return [Finding(
            "overfit_one_batch", "not_learning", "info", None, evidence,
            f"A copy of the model {'memorised' if memorised else 'learned'} one batch of "
            f"{rows} examples: its loss fell from {first:.3g} to {last:.3g} in "
            f"{OVERFIT_STEPS} Adam steps" + (f" (accuracy {acc:.0%})" if acc is not None else "")
            + ". The model, its loss and its labels can learn.",
            "Nothing to fix here.", page="doctor", panel="doctor_figure")]
    return [Finding(
        "overfit_one_batch", "not_learning", "warning", None, evidence,
        f"A copy of the model could not memorise one batch of {rows} examples: in "
        f"{OVERFIT_STEPS} Adam steps (rate {OVERFIT_LEARNING_RATE:g}) its loss went from "
        f"{first:.3g} to {last:.3g}" + (f" (accuracy {acc:.0%})" if acc is not None else "")
        + f": not even halved. A model that cannot fit {rows} examples will not fit thousands: "
        "something in the "
        "setup blocks learning.",
        "Look at the setup findings (loss and output activation, labels, input scale) and "
        "at dead or saturated layers; check that the labels match the inputs.",
        page="doctor", panel="doctor_figure")]


def lr_sweep(ev: Evidence) -> dict[str, Any]:
    """The range test: `{"lrs", "losses" (smoothed), "steepest", "diverged", "best"}`."""
    import keras

    setting = ev.optimizer
    name = setting[0] if setting else "adam"
    try:
        optimizer = keras.optimizers.get(name)
    except ValueError:
        optimizer = keras.optimizers.Adam()
    clone = model_copy(ev, fresh=True)
    step = _trainer(ev, clone, optimizer)
    lrs = np.geomspace(LR_START, LR_END, LR_STEPS)
    smooth, avg, best, out_lrs = [], 0.0, math.inf, []
    diverged = None
    for i, lr in enumerate(lrs):
        optimizer.learning_rate.assign(float(lr))
        x, y = _batch(ev, i * LR_ROWS, LR_ROWS, clone)
        loss = step(x, y)
        if not math.isfinite(loss):
            diverged = float(lr)
            break
        avg = 0.98 * avg + 0.02 * loss
        value = avg / (1 - 0.98 ** (i + 1))
        smooth.append(value)
        out_lrs.append(float(lr))
        best = min(best, value)
        if i > 10 and value > LR_DIVERGE * best:
            diverged = float(lr)
            break
    arr = np.asarray(smooth)
    skip = LR_SKIP if len(arr) > 2 * LR_SKIP else 0  # the smoothed loss settles first
    low = skip + int(np.argmin(arr[skip:]))
    return {"lrs": out_lrs, "losses": arr.tolist(), "steepest": out_lrs[_steepest(arr, low)],
            "best": out_lrs[low], "diverged": diverged, "optimizer": name}


def _steepest(loss: np.ndarray, low: int) -> int:
    """Where the smoothed loss is halfway down its fall from its level before the fall (the
    median of the settled part before its lowest point `low`) to that lowest point: the
    middle of the fall, which one step's noise cannot move the way it moves a slope. `low`
    when there is no fall of `LR_MIN_FALL` of the level."""
    skip = LR_SKIP if low > 2 * LR_SKIP else 0
    if low <= skip:
        return low
    level = float(np.median(loss[skip:low]))
    drop = level - float(loss[low])
    if drop <= LR_MIN_FALL * abs(level):
        return low
    below = np.flatnonzero(loss[skip:low + 1] <= level - drop / 2)
    return skip + int(below[0]) if below.size else low


@check("lr_range_test", ("learning_rate_high", "learning_rate_low"), needs=("train_probe",))
def lr_range_test(ev: Evidence) -> list[Finding]:
    """Where the loss falls fastest and where it diverges, against the file's rate."""
    result = lr_sweep(ev)
    current = ev.optimizer[1] if ev.optimizer else None
    steep, diverged = result["steepest"], result["diverged"]
    ev.plot("lr_range_test", None, {"kind": "lr_finder", **result, "current": current})
    evidence = {"optimizer": result["optimizer"], "steepest_lr": steep,
                "lowest_loss_lr": result["best"],
                "diverges_at": diverged if diverged is not None else "not reached",
                "file_lr": current if current is not None else "unknown"}
    lo, hi = sorted((steep, result["best"] / 10))
    span = f"about {steep:.2g}" if hi / lo < 3 else f"between about {lo:.2g} and {hi:.2g}"
    where = {"page": "doctor", "panel": "doctor_figure"}
    if current is not None and diverged is not None and current >= diverged / 3:
        return [Finding(
            "lr_range_test", "learning_rate_high", "warning", None, evidence,
            f"In a learning-rate sweep on a fresh copy of the model the loss diverges from about "
            f"{diverged:.2g}, and the file's rate is {current:.2g}: too close to (or past) "
            "the point where training blows up.",
            f"Use a rate {span} (where the loss falls fastest).", **where)]
    category = "learning_rate_high" if current is not None and current > steep else \
        "learning_rate_low"
    return [Finding(
        "lr_range_test", category, "info", None, evidence,
        f"In a learning-rate sweep on a fresh copy of the model ({LR_STEPS} steps from "
        f"{LR_START:g} up, {result['optimizer']}) the loss falls fastest at about {steep:.2g}"
        + (f" and diverges from about {diverged:.2g}" if diverged else "")
        + (f"; the file's rate is {current:.2g}." if current is not None else "."),
        f"A good rate is {span}" + (f", below {diverged / 3:.2g}." if diverged else "."),
        **where)]
