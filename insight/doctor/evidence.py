"""The evidence every check reads, gathered once, lazily, and shared.

`Evidence` holds the model, its data and its training log, and computes what checks ask for
on first use only: the heads (activation, units, compiled loss per output), the optimizer,
the labels and input arrays, activation statistics over the data
(`insight.activation_stats`), the gradients of one batch (`insight.gradients`), the model's
predictions on the first rows, and the training curves (`insight.read_scalars`). What cannot
be had raises `Unavailable` with the reason, which `diagnose` records as the check's skip
reason ("no logdir", "synthetic inputs: no data given").

Expensive pieces go through `memo(key, compute)` (the app passes its cache, with the keys
the Activations and Gradients panels use, so the doctor and those pages share one pass).

Example:

>>> ev = Evidence(loaded, dataset_for(loaded), "logs/")  # doctest: +SKIP
>>> ev.heads[0].activation, ev.stats.table.shape[0]  # doctest: +SKIP
('softmax', 7)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from insight.data import Dataset
from insight.doctor.heads import Head, model_heads, optimizer_setting
from insight.errors import InsightError
from insight.model.layers import as_model, iter_layers, output_layer_paths

__all__ = ["Evidence", "Unavailable", "STATS_ROWS", "GRADIENT_ROWS", "PREDICT_ROWS",
           "INPUT_ROWS", "PROFILE_BYTES", "XLA_ROWS"]

STATS_ROWS = 2048  # examples the activation statistics read (as the Activations page)
GRADIENT_ROWS = 64  # rows of the one gradient batch (as the Gradients page)
PREDICT_ROWS = 512  # rows whose predictions are checked against their labels
INPUT_ROWS = 10_000  # rows the input statistics read
PROFILE_BYTES = 32 * 2**20  # a profile the doctor converts unasked (about 10 s of xprof)
XLA_ROWS = 32  # the batch XLA compiles and times (as the Compiler page)


class Unavailable(Exception):  # noqa: N818  a reason, not a failure
    """A piece of evidence cannot be had; `reason` says why, in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Evidence:
    """The model, its data and its log, and what checks compute from them, once each.

    Args:
        model: a `LoadedModel` or a `keras.Model` (compiled in memory, during `fit`).
        dataset: the data, or `None` (no data checks; synthetic data counts as none).
        logdir: a TensorBoard logdir, CSVLogger CSV or history JSON, or `None`.
        curves: instead of a logdir, a scalars frame (`run, tag, step, value`), or the
            curves already split into series (`insight.doctor.series.training_series`'s
            output: the callback's history so far). Defaults to `None`.
        data_error: why there is no dataset, when reading it failed. Defaults to `None`.
        memo: `memo(key, compute)` for the expensive pieces. Defaults to computing.
        probe: `(x, y)` of the gradient batch, instead of the dataset's first rows.
            Defaults to `None`.
        gradients: a function returning the `Gradients` to check, instead of
            `insight.gradients` (the callback's lean pass over the weights only). Defaults to
            `None`.
        profile: read the newest profile under the logdir: `None` when its xplane files are
            under `PROFILE_BYTES` (a long profile takes minutes to convert), `True` always,
            `False` never; or a run's label (the Profiler page's choice). Defaults to `None`.
        xla: time the forward pass with XLA against `tf.function` (it compiles the model:
            seconds to minutes), or a function returning `insight.compiler.xla.step_times`'
            frame already measured. Defaults to `False`.
        synthetic_ok: keep a synthetic dataset (the Activations and Gradients pages flag
            what they measure on it; the doctor's diagnosis does not). Defaults to `False`.
    """

    def __init__(self, model: Any, dataset: Dataset | None = None,
                 logdir: str | Path | None = None, *,
                 curves: pd.DataFrame | list[dict[str, Any]] | None = None,
                 data_error: str | None = None,
                 memo: Callable[[str, Callable[[], Any]], Any] | None = None,
                 probe: tuple[Any, Any] | None = None,
                 gradients: Callable[[], Any] | None = None,
                 profile: bool | str | None = None,
                 xla: bool | Callable[[], pd.DataFrame] = False,
                 synthetic_ok: bool = False) -> None:
        self.loaded = model if hasattr(model, "preflight") else None
        self.model = as_model(model)
        self.source = model
        self.logdir = Path(logdir) if logdir else None
        self._curves = curves
        self._memo = memo or (lambda key, compute: compute())
        self._probe = probe
        self._gradients = gradients
        self._profile = profile
        self._xla = xla
        if dataset is not None and dataset.synthetic and not synthetic_ok:
            data_error = data_error or ("synthetic inputs: no data given, so nothing about "
                                        "your data can be checked")
            dataset = None
        self.dataset = dataset
        self._data_error = data_error or "no data given"
        self.plots: dict[str, dict[str, Any]] = {}
        self._shared: dict[str, Any] = {}
        if isinstance(curves, list):  # already split into series
            self._shared["training_series"] = curves
            self._curves = pd.DataFrame({"run": ["series"], "tag": ["loss"], "step": [0],
                                         "value": [0.0]}) if curves else \
                pd.DataFrame(columns=["run", "tag", "step", "value"])

    def shared(self, key: str, compute: Callable[[], Any]) -> Any:
        """`compute()` once per evidence: what several checks derive from the same piece
        (the curves split into series)."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    def plot(self, check: str, layer: str | None, data: dict[str, Any]) -> None:
        """Keep the plain data of a finding's figure (`insight.figures.doctor`), keyed
        `"check|layer"`."""
        self.plots[f"{check}|{layer or ''}"] = data

    # ----------------------------------------------------------------- the model
    @cached_property
    def heads(self) -> list[Head]:
        """One `Head` per output."""
        return model_heads(self.source)

    @cached_property
    def output_layers(self) -> set[str]:
        """Paths of the layers that make the outputs."""
        return output_layer_paths(self.model)

    @cached_property
    def layers(self) -> list[tuple[str, Any]]:
        """`[(path, layer)]` of every layer, in depth order, nested ones included."""
        return [(p, layer) for p, layer, _ in iter_layers(self.model)]

    @cached_property
    def nested(self) -> set[str]:
        """Paths of nested models."""
        return {p for p, layer in self.layers if getattr(layer, "layers", None)}

    @cached_property
    def optimizer(self) -> tuple[str, float | None] | None:
        """`(optimizer name, learning rate)` as compiled, or `None`."""
        return optimizer_setting(self.source)

    def limit(self, what: str) -> None:
        """Raise `Unavailable` when the model's format rules out `what` (a SavedModel)."""
        reason = (getattr(self.loaded, "limits", None) or {}).get(what)
        if reason:
            raise Unavailable(reason)

    # ----------------------------------------------------------------- the data
    def data(self) -> Dataset:
        """The dataset, or `Unavailable`."""
        if self.dataset is None:
            raise Unavailable(self._data_error)
        return self.dataset

    @cached_property
    def inputs(self) -> list[tuple[str, np.ndarray]]:
        """`[(input name, first INPUT_ROWS rows)]`."""
        x = self.data().x
        if isinstance(x, dict):
            return [(k, np.asarray(v)[:INPUT_ROWS]) for k, v in x.items()]
        try:
            name = str(self.model.inputs[0].name)
        except (AttributeError, IndexError, TypeError, ValueError):
            name = "input"
        return [(name, np.asarray(x)[:INPUT_ROWS])]

    @cached_property
    def labels(self) -> list[np.ndarray | None]:
        """Each head's labels (`None` for a head without), or `Unavailable`."""
        from insight.probe.losses import labels_per_output

        ds = self.data()
        if ds.y is None:
            raise Unavailable("the data has no labels")
        names = [h.name for h in self.heads]
        try:
            picked = labels_per_output(ds.y, names)(ds.y)
        except InsightError as exc:
            raise Unavailable(f"the labels do not match the outputs ({exc.what})") from None
        return [np.asarray(a) for a in picked]

    # ----------------------------------------------------------------- measurements
    @cached_property
    def stats(self):
        """`insight.activation_stats` over the first `STATS_ROWS` examples (read from the
        stream of data beyond memory: `Dataset.stream`; every other piece reads the rows
        the dataset holds in memory, a stream's first ones)."""
        from insight.probe.stats import activation_stats

        self.limit("activations")
        ds = self.data()
        ds = ds.take(slice(0, STATS_ROWS)) if len(ds) > STATS_ROWS else ds
        try:
            return self._memo(f"probe:stats:{STATS_ROWS}",
                              lambda: activation_stats(self.source, ds, batch_size=128,
                                                       max_examples=STATS_ROWS))
        except InsightError:
            raise
        except Exception as exc:  # noqa: BLE001  NaN activations break the histograms
            text = str(exc).lower()
            raise Unavailable("the activations are NaN or infinite, so no statistics"
                              if "nan" in text or "inf" in text else
                              f"activation statistics failed ({type(exc).__name__})") from None

    @cached_property
    def grads(self):
        """`insight.gradients` of the loss (labels) or the predicted class's score (none) on
        the first `GRADIENT_ROWS` examples, or on the probe batch."""
        from insight.probe.backprop import gradients

        self.limit("gradients")
        if self._gradients is not None:
            return self._gradients()
        if self._probe is not None:
            x, y = self._probe
            return gradients(self.source, x, y)
        batch = self.data().take(slice(0, GRADIENT_ROWS))
        return self._memo(f"probe:gradients:{GRADIENT_ROWS}",
                          lambda: gradients(self.source, batch.x, batch.y))

    @cached_property
    def predictions(self) -> list[np.ndarray]:
        """Each head's outputs for the first `PREDICT_ROWS` examples (float64)."""
        from insight.probe.capture import as_inputs, count_rows, slice_rows
        from insight.probe.losses import output_items

        ds = self.data()
        x = as_inputs(ds.take(slice(0, PREDICT_ROWS)).x, self.model)
        parts: list[list[np.ndarray]] = []
        for start in range(0, count_rows(x), 128):
            xb = slice_rows(x, start, min(count_rows(x), start + 128))
            outs = output_items(self.model(xb, training=False), self.model)
            parts.append([np.asarray(o, np.float64) for _, o in outs])
        return [np.concatenate(p) for p in zip(*parts, strict=True)]

    @cached_property
    def curves(self) -> pd.DataFrame:
        """Every scalar of the training log (`run, tag, step, value`), or `Unavailable`."""
        if self._curves is not None:
            frame = self._curves
        elif self.logdir is None:
            raise Unavailable("no logdir")
        else:
            from insight.curves.logdir import read_scalars

            try:
                frame = read_scalars(self.logdir)
            except InsightError as exc:
                raise Unavailable(f"the logdir cannot be read ({exc.what})") from None
        if frame.empty:
            raise Unavailable("the training log holds no scalars yet")
        return frame

    @cached_property
    def profile(self) -> tuple[Any, pd.DataFrame]:
        """`(run, steps)`: the newest profile run under the logdir and its step breakdown
        (`insight.profiler.breakdown.run_steps`), or `Unavailable`."""
        from insight.profiler.breakdown import run_steps
        from insight.profiler.capture import find_profiles, get_profile
        from insight.profiler.tables import layer_names

        if self._profile is False:
            raise Unavailable("profile not read (asked not to)")
        if self.logdir is None or not self.logdir.is_dir():
            raise Unavailable("no logdir" if self.logdir is None else
                              "the training log is a file (CSV or history): no profile")
        try:
            runs = [get_profile(self.logdir, self._profile)] if isinstance(self._profile, str) \
                else find_profiles(self.logdir)
        except InsightError as exc:
            raise Unavailable(f"the profiles cannot be listed ({exc.what})") from None
        if not runs:
            raise Unavailable("no profile in the logdir")
        run = runs[0]
        if self._profile is None and run.size > PROFILE_BYTES:
            raise Unavailable(f"the newest profile is {run.size / 2**20:,.0f} MB, slow to "
                              "convert: open it on the Profiler page, or `insight doctor "
                              "--profile`")
        layers = layer_names(getattr(self.loaded, "preflight", None), self.loaded)
        try:
            return run, run_steps(run, layers, self._memo)
        except InsightError as exc:
            raise Unavailable(f"the profile cannot be read ({exc.what})") from None

    @cached_property
    def xla_times(self) -> pd.DataFrame:
        """`insight.compiler.xla.step_times` of the forward pass on the first `XLA_ROWS`
        examples (eager, `tf.function`, XLA), or `Unavailable`."""
        if callable(self._xla):
            return self._xla()
        if not self._xla:
            raise Unavailable("XLA not timed (it compiles the model): the Doctor page's active "
                              "checks, or `insight doctor --xla`")
        from insight.compiler.xla import compile_model, step_times

        self.limit("XLA view by layer")
        if self.dataset is not None:
            batch = self.dataset.take(slice(0, XLA_ROWS))
        else:  # a step time needs no real data
            from insight.data import synthetic_dataset

            batch = synthetic_dataset(self.model, XLA_ROWS)
        comp = self._memo(f"xla:forward:{XLA_ROWS}",
                          lambda: compile_model(self.source, batch.x, batch.y))
        return self._memo(f"xla:forward:{XLA_ROWS}:times", lambda: step_times(comp))

    # ----------------------------------------------------------------- availability
    def require(self, need: str) -> None:
        """Raise `Unavailable` when the evidence `need` (`insight.doctor.registry.NEEDS`)
        cannot be had, before a check runs."""
        if need == "compile" and not any(h.loss for h in self.heads):
            raise Unavailable("no compiled loss in the file (saved before compile, or "
                              "compiled with a custom loss)")
        if need in ("data", "activations", "gradients", "predictions"):
            if need != "gradients" or (self._probe is None and self._gradients is None):
                self.data()
        if need == "labels":
            self.labels  # noqa: B018  raises Unavailable
        if need == "activations":
            self.limit("activations")
        if need == "gradients":
            self.limit("gradients")
        if need == "predictions":
            self.limit("activations")
        if need == "curves":
            self.curves  # noqa: B018  raises Unavailable
        if need == "profile":
            self.profile  # noqa: B018  raises Unavailable
        if need == "xla":
            self.xla_times  # noqa: B018  raises Unavailable
        if need == "train_probe":
            self.labels  # noqa: B018
            self.limit("gradients")

