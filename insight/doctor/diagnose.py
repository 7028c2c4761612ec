"""`diagnose`: run every registered check on a model, its data and its training log.

Evidence is gathered once (`insight.doctor.evidence.Evidence`) and shared by all checks; a
check whose evidence cannot be had is skipped with the reason ("no logdir"). Active checks
(`insight.doctor.active`) train a copy of the model and run only with `train_probe=True`.

Example:

>>> import insight
>>> loaded = insight.load_model("sample_models/digits_cnn/model.keras")  # doctest: +SKIP
>>> report = insight.diagnose(loaded, logdir="sample_models/digits_cnn/logs")  # doctest: +SKIP
>>> report.worst() in (None, "info")  # doctest: +SKIP
True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from insight.data import Dataset
from insight.doctor.evidence import Evidence, Unavailable
from insight.doctor.findings import Finding, Report
from insight.doctor.registry import Check, all_checks
from insight.errors import DataError, InsightError

__all__ = ["diagnose", "run_checks", "doctor_dataset", "ACTIVE_SKIP"]

ACTIVE_SKIP = ("active check, run only when asked (it trains a copy of the model): the Doctor "
               "page's button, `insight doctor --train-probe`, `diagnose(train_probe=True)`")


def doctor_dataset(loaded: Any, data: Dataset | str | Path | None
                   ) -> tuple[Dataset | None, str | None]:
    """The data to diagnose with, and why there is none: a `Dataset` is fitted to the model,
    a path read (`insight.data.dataset_for`), `None` means the data bundled beside the model,
    else no data ("synthetic inputs").

    Raises:
        DataError: a data path that cannot be read or does not fit the model.
    """
    from insight.data import conform_to_model, dataset_for

    model = getattr(loaded, "model", loaded)
    if isinstance(data, Dataset):
        return conform_to_model(model, data), None
    if data is not None:
        return dataset_for(loaded, data), None
    if getattr(loaded, "preflight", None) is None:
        return None, "no data given"
    try:
        ds = dataset_for(loaded)
    except DataError as exc:
        return None, f"the data beside the model does not fit it ({exc.what})"
    return (None, "synthetic inputs: no data given, so nothing about your data can be "
                  "checked") if ds.synthetic else (ds, None)


def run_checks(ev: Evidence, *, train_probe: bool = False,
               checks: Iterable[Check] | None = None,
               on_check: Callable[[int, int, str], None] | None = None) -> Report:
    """Run `checks` (default: every registered one) on the evidence `ev`.

    Args:
        ev: the shared evidence.
        train_probe: also run the active checks. Defaults to `False`.
        checks: the checks to run. Defaults to all.
        on_check: `on_check(i, n, name)` before each check (a progress bar). Defaults to
            `None`.

    Returns:
        A `Report`: what each check found, which ran, which were skipped and why. A check
        that fails unexpectedly is skipped with the error as its reason, never raised.
    """
    start = time.perf_counter()
    chosen = list(all_checks() if checks is None else checks)
    findings: list[Finding] = []
    checked: list[str] = []
    skipped: list[dict[str, str]] = []
    for i, item in enumerate(chosen):
        if on_check is not None:
            on_check(i, len(chosen), item.name)
        if item.active and not train_probe:
            skipped.append({"check": item.name, "reason": ACTIVE_SKIP})
            continue
        try:
            for need in item.needs:
                ev.require(need)
            found = item.fn(ev)
        except Unavailable as exc:
            skipped.append({"check": item.name, "reason": exc.reason})
            continue
        except InsightError as exc:
            skipped.append({"check": item.name, "reason": str(exc)})
            continue
        except Exception as exc:  # noqa: BLE001  one broken check must not hide the others
            skipped.append({"check": item.name,
                            "reason": f"the check failed: {type(exc).__name__}: {exc}"})
            continue
        checked.append(item.name)
        findings.extend(found)
    order = {c.name: i for i, c in enumerate(all_checks())}
    return Report(findings, checked, skipped, time.perf_counter() - start, dict(ev.plots), order)


def diagnose(loaded: Any, data: Dataset | str | Path | None = None,
             logdir: str | Path | None = None, *, train_probe: bool = False,
             xla: bool = False, profile: bool | None = None) -> Report:
    """Diagnose a model: why it may not learn, or not generalise, in plain words.

    Every registered check runs on evidence gathered once: the file's compile config (loss,
    output activation, optimizer and learning rate), the data (labels, input statistics),
    the weights, activation statistics and the gradients of one batch at the file's
    weights, the model's predictions, and the training curves.

    Args:
        loaded: an `insight.LoadedModel` (or a `keras.Model`, compiled or not).
        data: an `insight.data.Dataset`, a data path (`.npz`, `.npy`, `.csv`, an image
            folder), or `None` for the `data.npz` beside the model. Synthetic inputs count as
            no data: the data, activation, gradient and prediction checks are then skipped.
            Defaults to `None`.
        logdir: a TensorBoard logdir, a CSVLogger CSV or a history JSON, or `None` (the
            curve checks are skipped). Defaults to `None`.
        train_probe: also run the active checks, which train a copy of the model (can it
            overfit one batch? a learning-rate range test). Defaults to `False`.
        xla: also time the forward pass with XLA against `tf.function` (it compiles the
            model). Defaults to `False`.
        profile: read the newest profile under `logdir`: `None` when it is small enough to
            convert in seconds (`PROFILE_BYTES`), `True` always, `False` never. Defaults to
            `None`.

    Returns:
        A `Report`: `findings` (error, warning, info), `checked`, `skipped` (with reasons),
        `to_dict()`, `worst()`.

    Raises:
        DataError: a `data` path that cannot be read or does not fit the model.

    Example:

    >>> report = diagnose(loaded, "data.npz", "logs/")  # doctest: +SKIP
    >>> [(f.severity, f.check, f.layer) for f in report.findings]  # doctest: +SKIP
    [('warning', 'vanishing_gradient', 'dense1')]
    """
    dataset, why = doctor_dataset(loaded, data)
    ev = Evidence(loaded, dataset, logdir, data_error=why, xla=xla, profile=profile)
    return run_checks(ev, train_probe=train_probe)
