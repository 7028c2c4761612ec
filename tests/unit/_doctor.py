"""What the doctor's tests share: tiny seeded models, data, curves, and one-check runs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from insight.data import Dataset
from insight.doctor import Evidence, Report, get_check, run_checks

CLASSES = 3


def data(n: int = 120, features: int = 6, seed: int = 0) -> Dataset:
    """Standardized inputs and 3 balanced-ish classes from a linear rule."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x[:, :CLASSES] + 0.1 * rng.normal(size=(n, CLASSES))).argmax(1).astype("int64")
    return Dataset(x=x, y=y, name="tiny")


def mlp(*, hidden: tuple[int, ...] = (8,), activation: str = "relu", units: int = CLASSES,
        output: str = "softmax", loss="sparse_categorical_crossentropy", optimizer=None,
        bias: float = 0.0, features: int = 6, compile: bool = True):
    """A seeded MLP, built and (by default) compiled in memory, never trained."""
    import keras

    keras.utils.set_random_seed(0)
    layers = [keras.Input((features,), name="x")]
    layers += [keras.layers.Dense(u, activation=activation, name=f"hidden{i + 1}",
                                  bias_initializer=keras.initializers.Constant(bias))
               for i, u in enumerate(hidden)]
    layers.append(keras.layers.Dense(units, activation=output, name="out"))
    model = keras.Sequential(layers, name="tiny_mlp")
    if compile:
        model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3), loss=loss)
    return model


def curves(**series: list[float]) -> pd.DataFrame:
    """A history as `read_scalars` gives it (run `history`, Keras' `val_` names), e.g.
    `curves(loss=[...], val_loss=[...])`; NaN stays NaN."""
    rows = [("history", tag, step, 0.0, float(v)) for tag, values in series.items()
            for step, v in enumerate(values)]
    frame = pd.DataFrame(rows, columns=["run", "tag", "step", "wall_time", "value"])
    return frame.astype({"run": "category", "tag": "category"})


def stats_table(rows: list[dict]) -> pd.DataFrame:
    """An `ActivationStats.table` from partial rows (the rest filled as a healthy layer)."""
    from insight.probe.stats import STAT_COLUMNS

    base = {"class": "Dense", "shape": "(None, 8)", "units": 8, "mean": 0.5, "std": 1.0,
            "min": 0.0, "max": 3.0, "zero_fraction": 0.3, "dead_units": 0, "dead_fraction": 0.0,
            "saturation": "", "saturated_fraction": float("nan")}
    return pd.DataFrame([{**base, **r} for r in rows], columns=STAT_COLUMNS)


def grads_table(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    """A `Gradients.table` from `(layer, params, weight_grad_norm)` rows."""
    return pd.DataFrame([{"layer": p, "class": "Dense", "params": n, "weight_norm": 1.0,
                          "weight_grad_norm": g, "activation_grad_norm": 0.01 if n else 0.01}
                         for p, n, g in rows])


def evidence(model, dataset: Dataset | None = None, frame: pd.DataFrame | None = None, *,
             stats: pd.DataFrame | None = None, grads: pd.DataFrame | None = None,
             predictions: list[np.ndarray] | None = None, loss: float = 1.0) -> Evidence:
    """Evidence for `model`, with measured pieces replaced by the given synthetic ones."""
    from insight.probe.backprop import Gradients
    from insight.probe.stats import ActivationStats

    ev = Evidence(model, dataset, curves=frame)
    if stats is not None:
        ev.__dict__["stats"] = ActivationStats(stats, n_examples=100)
    if grads is not None:
        ev.__dict__["grads"] = Gradients({}, {}, loss, "loss: test", grads)
    if predictions is not None:
        ev.__dict__["predictions"] = predictions
    return ev


def run(ev: Evidence, *names: str, train_probe: bool = False) -> Report:
    """Run the named checks only; a check that failed (rather than being skipped for want of
    evidence) fails the test."""
    report = run_checks(ev, checks=[get_check(n) for n in names], train_probe=train_probe)
    failed = [s for s in report.skipped if s["reason"].startswith("the check failed")]
    assert failed == [], failed
    return report


def found(report: Report) -> list[tuple[str, str, str, str | None]]:
    """`[(check, category, severity, layer)]` of a report's findings."""
    return [(f.check, f.category, f.severity, f.layer) for f in report.findings]
