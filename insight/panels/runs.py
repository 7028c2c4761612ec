"""Panels of the Runs page: the runs of a logdir with their hyperparameters.

They read `ctx.logdir` (`insight.curves.hparams.read_hparams`): the hparams plugin's sessions,
or run folders with `hparams.json`. `runs_folder` picks what the page gives them: the
sidebar's logdir when it records hyperparameters, else the `sweep/` folder beside the model
file (as the digits_cnn sample ships it).

Example:

>>> from insight.panels import build_panel, PanelContext
>>> from pathlib import Path
>>> table = build_panel("runs_table", PanelContext(logdir=Path("runs/")))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from insight.curves.hparams import HParamsRuns, has_hparams, read_hparams
from insight.errors import DataError, UsageError
from insight.figures.runs import parallel_coordinates
from insight.panels.registry import Panel, PanelContext, Param, register
from insight.patterns import user_regex
from insight.remote import is_remote

__all__ = ["runs_of", "runs_folder", "metric_columns", "default_metric", "SWEEP_BESIDE"]

SWEEP_BESIDE = "sweep"  # the folder beside a model file looked at when the logdir has no runs
_USES = ("logdir",)
_FILTER = Param("filter", "str", "", help="A regex over each run's name and "
                "`hparam=value` pairs (e.g. `optimizer=adam`); empty: every run.")


def runs_of(ctx: PanelContext) -> HParamsRuns:
    """The sessions the Runs panels show: those of `runs_folder(ctx.logdir, the model file)`
    (memoised on its files' sizes and mtimes), so a page, an export and a deep link agree.

    Raises:
        DataError: no logdir, and no `sweep/` with runs beside the model.
    """
    from insight.curves.logdir import logdir_stamp

    report = ctx.preflight or (ctx.loaded.preflight if ctx.loaded is not None else None)
    folder = runs_folder(ctx.logdir, report.model_file if report is not None else None) \
        or ctx.logdir
    if folder is None:
        raise DataError("No logdir to read runs from.",
                        "Give a logdir whose runs were written with hp.KerasCallback (or "
                        "hp.hparams), or a folder of runs with hparams.json files.",
                        "logdir=None")
    folder = _where(folder)
    return ctx.cached(f"hparams|{folder}|{logdir_stamp(folder)}", lambda: read_hparams(folder))


def _where(value: str | Path) -> str | Path:
    """A local folder as a `Path`, an `s3://`/`gs://` URL as its string (`Path` folds `//`)."""
    return str(value) if is_remote(str(value)) else Path(value)


def runs_folder(logdir: str | Path | None, model_file: str | Path | None
                ) -> Path | str | None:
    """Where the Runs page reads runs: `logdir` (a folder, or an `s3://`/`gs://` URL, returned
    as that string) when it records hyperparameters, else the `sweep/` folder beside
    `model_file` when that does, else `None`.

    Raises:
        StorageError: a remote `logdir` cannot be listed or read (missing, refused,
            dropped): said, not taken for a logdir without hyperparameters.

    Example:

    >>> runs_folder(None, None) is None
    True
    >>> runs_folder("s3://bucket/sweep", None)  # doctest: +SKIP
    's3://bucket/sweep'
    """
    candidates: list[str | Path] = [_where(logdir)] if logdir else []
    if model_file:
        file = Path(model_file)
        candidates.append((file if file.is_dir() else file.parent) / SWEEP_BESIDE)
    for folder in candidates:
        if isinstance(folder, str):  # remote: listed once, kept (as the Training page's)
            try:
                if has_hparams(folder):
                    return folder
            except DataError:
                pass
            continue
        try:
            if folder.is_dir() and has_hparams(folder):
                return folder
        except (DataError, OSError):
            continue
    return None


def metric_columns(runs: HParamsRuns) -> list[str]:
    """The metric columns of the table (`"<metric> (best)"` before `"(final)"`)."""
    return [f"{m} ({w})" for w in ("best", "final") for m in runs.metrics]


def default_metric(runs: HParamsRuns) -> str:
    """The column runs are sorted and coloured by: the first metric's best value, preferring
    a validation metric."""
    cols = metric_columns(runs)
    val = [c for c in cols if c.startswith(("validation/", "val_")) and c.endswith("(best)")]
    return (val or cols or [""])[0]


def _filtered(runs: HParamsRuns, pattern: str) -> pd.DataFrame:
    table = runs.table
    if not pattern:
        return table
    regex = user_regex(pattern, "Run filter")
    text = table.apply(lambda r: " ".join([str(r["run"])] + [f"{h}={r[h]}" for h in
                                                             runs.hparams]), axis=1)
    return table[[bool(regex.search(t)) for t in text]]


def _check_metric(runs: HParamsRuns, metric: str, param: str) -> str:
    metric = metric or default_metric(runs)
    if metric not in runs.table.columns or metric in ("run", "source"):
        raise UsageError(f"No such metric column: {metric!r}. Metric columns are: "
                         f"{', '.join(metric_columns(runs)) or 'none'}.",
                         "Pick one of them.", f"{param}={metric!r}")
    return metric


def _direction(runs: HParamsRuns, column: str) -> str:
    return runs.directions.get(column.rsplit(" (", 1)[0], "")


def _table(ctx: PanelContext, filter: str = "", sort: str = "") -> pd.DataFrame:
    runs = runs_of(ctx)
    if runs.empty:
        return runs.table
    table = _filtered(runs, filter)
    if runs.metrics:
        sort = _check_metric(runs, sort, "sort")
        table = table.sort_values(sort, ascending=_direction(runs, sort) == "min",
                                  na_position="last", kind="stable")
    return table.reset_index(drop=True)


def _parallel(ctx: PanelContext, color: str = "", filter: str = ""):
    runs = runs_of(ctx)
    if runs.empty:
        raise DataError("No run in this logdir records hyperparameters.",
                        "Log them with hp.KerasCallback(logdir, hparams) or hp.hparams, or "
                        "put an hparams.json in each run folder.", f"logdir={ctx.logdir!s}")
    color = _check_metric(runs, color, "color")
    table = _filtered(runs, filter)
    if table.empty:
        raise UsageError("No run matches the filter.", "Loosen or clear it.",
                         f"filter={filter!r}")
    return parallel_coordinates(table, runs.hparams, color,
                                direction=_direction(runs, color), display=runs.display)


register(Panel("runs_table", "Runs", "table", _table, params=(
    _FILTER, Param("sort", "str", "", help="The metric column to sort by, best first; empty: "
                   "the first validation metric's best value.")),
    needs_model=False, uses=_USES,
    description="Every run with its hyperparameters and each metric's final and best value "
                "(hparams plugin summaries, or hparams.json)."))
register(Panel("runs_parallel", "Hyperparameters", "figure", _parallel, params=(
    Param("color", "str", "", help="The metric column that colours the lines; empty: the "
          "first validation metric's best value."), _FILTER),
    needs_model=False, uses=_USES,
    description="One line per run across its hyperparameters to a metric, coloured by it."))
