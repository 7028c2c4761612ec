"""Runs with their hyperparameters: the hparams plugin's summaries and `hparams.json` files.

TensorBoard's hparams plugin (`tensorboard.plugins.hparams.api`: `hp.hparams_config`,
`hp.hparams`, `hp.KerasCallback`) writes summaries with plugin name `"hparams"` whose
metadata content is an `HParamsPluginData` protobuf: the experiment (which hyperparameters and
metrics there are) at the top of the logdir, and each session's hyperparameters
(`session_start_info`) in the session's folder, whose metrics the TensorBoard callback writes in
its `train/` and `validation/` subfolders. A run folder holding an `hparams.json` or
`config.json` (a flat object of names and values) is a session too.

`read_hparams` reads both into one wide table: a row per session, its hyperparameters, then
each metric's final and best value (best by the metric's direction: losses down, accuracies up).
Event files are framed and CRC-checked by the curves reader's own TFRecord layer; only records
that mention the plugin are parsed with protobuf, and only in each file's first `HEAD_BYTES`:
the plugin writes a session's hyperparameters when it starts (`hp.hparams`, or
`KerasCallback.on_train_begin`), so a large logdir of scalars costs one short read per file.

Example:

>>> from insight.curves.hparams import read_hparams
>>> runs = read_hparams("sample_models/digits_cnn/sweep")  # doctest: +SKIP
>>> runs.hparams  # doctest: +SKIP
['learning_rate', 'dense_units', 'optimizer']
>>> runs.table[["run", "learning_rate", "validation/epoch_accuracy (best)"]]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from insight.curves import _tfrecord as rec
from insight.curves.analysis import metric_direction
from insight.curves.logdir import Logdir
from insight.curves.remote import as_url, fetch_ranges, listing
from insight.errors import DataError, StorageError
from insight.remote import filesystem

__all__ = ["HParamsRuns", "read_hparams", "has_hparams", "run_pattern", "CONFIG_FILES",
           "MAX_CONFIG_BYTES", "HEAD_BYTES"]

PLUGIN = b"hparams"
CONFIG_FILES = ("hparams.json", "config.json")
MAX_CONFIG_BYTES = 1024**2  # a run's hyperparameters are bytes, not megabytes
MAX_CONFIG_KEYS = 64
HEAD_BYTES = 1024**2  # where in an event file hparams records are looked for (see below)


@dataclass
class HParamsRuns:
    """The sessions of a logdir with their hyperparameters and metrics.

    Attributes:
        table: one row per session: `run` (its folder relative to the logdir, `.` for the
            logdir itself), `source` (`"hparams plugin"` or the JSON file's name), every
            hyperparameter, then `"<metric> (final)"` and `"<metric> (best)"` per metric.
        hparams: the hyperparameter columns, in the experiment's order when it declares one.
        metrics: the metric names (`"validation/epoch_accuracy"`: the subfolder and the tag).
        directions: per metric, `"min"`, `"max"` or `""` (unknown: best is the last value).
        display: per hyperparameter or metric, the experiment's display name, if any.
    """

    table: pd.DataFrame
    hparams: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    directions: dict[str, str] = field(default_factory=dict)
    display: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether no session was found."""
        return self.table.empty


def run_pattern(run: str) -> str:
    """The Training page's run filter (a regex) that shows one session and its subfolders.

    >>> run_pattern("run-1")
    '^run\\\\-1(/|$)'
    """
    return f"^{re.escape(run)}(/|$)"


def read_hparams(logdir: str | Path) -> HParamsRuns:
    """Every session in `logdir` with its hyperparameters and final and best metrics.

    Args:
        logdir: a TensorBoard logdir (hparams plugin summaries), or a folder of run folders
            holding `hparams.json`/`config.json` beside their logs; on disk or an
            `s3://`/`gs://` URL (read as the Training page reads one: `insight.curves.remote`).

    Returns:
        An `HParamsRuns`; its table is empty when no session records hyperparameters.

    Raises:
        DataError: the path is not a folder.
        StorageError: a remote logdir's bucket or prefix is missing, the credentials were
            refused, or the connection failed.

    Example:

    >>> read_hparams("logs/").table.sort_values("validation/epoch_loss (best)")  # doctest: +SKIP
    """
    return _table(*_scan(logdir))


def has_hparams(logdir: str | Path) -> bool:
    """Whether any session in `logdir` records hyperparameters: the heads of its event files
    and its config files only (no metric is read; a remote logdir's scan is kept per listing).

    Raises:
        DataError, StorageError: as `read_hparams`.

    Example:

    >>> has_hparams("sample_models/digits_cnn/sweep")  # doctest: +SKIP
    True
    """
    return bool(_scan(logdir)[1])


_Scan = tuple[Path | str, dict[str, tuple[str, dict[str, Any]]], dict[str, Any]]
_REMOTE_SCANS: dict[str, _Scan] = {}


def _scan(logdir: str | Path) -> _Scan:
    """`(root, sessions, experiment)` of `logdir`: what `_table` turns into the table."""
    url = as_url(logdir)
    if url is not None:
        key = f"{url}|{listing(url).stamp}"
        if key not in _REMOTE_SCANS:
            if len(_REMOTE_SCANS) >= 16:
                _REMOTE_SCANS.clear()
            _REMOTE_SCANS[key] = _scan_remote(url)
        return _REMOTE_SCANS[key]
    root = Path(logdir).expanduser()
    if not root.is_dir():
        raise DataError("Hyperparameters are read from a logdir folder.",
                        "Give the folder hp.KerasCallback (or hp.hparams) wrote into, or a "
                        "folder of runs with hparams.json files.", f"logdir={str(logdir)!r}")
    folders: list[tuple[str, list[bytes], dict[str, bytes]]] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        here = Path(folder)
        heads = [_head(here / name) for name in sorted(f for f in files if "tfevents" in f)]
        configs = {name: _small(here / name) for name in CONFIG_FILES}
        folders.append((here.relative_to(root).as_posix() or ".", heads, configs))
    return _sessions(root, folders)


def _scan_remote(url: str) -> _Scan:
    """`_scan` of an `s3://`/`gs://` logdir: one listing (kept, as the Training page's
    is), then each event file's first `HEAD_BYTES` and each small config file, fetched
    concurrently in ranged GETs (the rest of the event files only for the metrics)."""
    found = listing(url)
    if found.single:
        raise DataError("Hyperparameters are read from a logdir folder.",
                        "Give the folder hp.KerasCallback (or hp.hparams) wrote into, or a "
                        "folder of runs with hparams.json files.", f"logdir={url!r}")
    wanted: list[tuple[str, str, int]] = []
    for key, (size, _) in found.files.items():
        name = key.rsplit("/", 1)[-1]
        if "tfevents" in name:
            wanted.append((key, 0, min(size, HEAD_BYTES)))
        elif name in CONFIG_FILES and size <= MAX_CONFIG_BYTES:
            wanted.append((key, 0, size))
    fs, _ = filesystem(url)
    got: dict[str, bytes] = {}
    for i, data in fetch_ranges(fs, url, wanted):
        if isinstance(data, StorageError) and data.reason != "missing":
            raise data  # a refused or dropped read: said, not a run quietly left out
        got[wanted[i][0]] = data if isinstance(data, bytes) else b""
    by_folder: dict[tuple[str, ...], tuple[list[bytes], dict[str, bytes]]] = {}
    for key in found.files:
        rel = found.relative(key)
        folder = tuple(rel.split("/")[:-1])
        heads, configs = by_folder.setdefault(folder, ([], {}))
        name = rel.rsplit("/", 1)[-1]
        if key in got and "tfevents" in name:
            heads.append(got[key])
        elif key in got:
            configs[name] = got[key]
    folders = [("/".join(f) or ".", heads, configs)
               for f, (heads, configs) in sorted(by_folder.items())]
    return _sessions(url, folders)


def _sessions(root: Path | str, folders: list[tuple[str, list[bytes], dict[str, bytes]]]
              ) -> _Scan:
    """The sessions of `folders`: `(run, the heads of its event files in name order, its config
    files' bytes)`, in walk order (a folder before its subfolders)."""
    experiment: dict[str, Any] = {}
    sessions: dict[str, tuple[str, dict[str, Any]]] = {}
    for run, heads, configs in folders:
        for buf in heads:
            found, exp = _plugin_data(buf)
            experiment = experiment or exp
            if found is not None:
                sessions[run] = ("hparams plugin", {**sessions.get(run, ("", {}))[1], **found})
        if run not in sessions:
            for name in CONFIG_FILES:
                values = _config_values(configs.get(name))
                if values:
                    sessions[run] = (name, values)
                    break
    return root, sessions, experiment


def _head(path: Path) -> bytes:
    """The first `HEAD_BYTES` of an event file (nothing when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return f.read(HEAD_BYTES)
    except OSError:
        return b""


def _small(path: Path) -> bytes | None:
    """A config file's bytes, or `None` when there is none or it is too large to be one."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
            return None
        return path.read_bytes()
    except OSError:
        return None


def _plugin_data(buf: bytes) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """`(session hyperparameters or None, experiment)` from the hparams records in the head
    `buf` of one event file."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.plugins.hparams import plugin_data_pb2

    offs, lens, _, _ = rec.walk(buf, 0, len(buf))
    arr = np.frombuffer(buf, np.uint8)
    hparams: dict[str, Any] | None = None
    experiment: dict[str, Any] = {}
    for off, n in zip(offs, lens, strict=True):
        payload = buf[off + rec.HEADER: off + rec.HEADER + n]
        if PLUGIN not in payload or rec.masked_crc32c(payload) != int(
                rec.u32_at(arr, np.array([off + rec.HEADER + n]))[0]):
            continue
        try:
            event = Event.FromString(payload)
        except Exception:  # noqa: BLE001 - a damaged record is skipped, as the curves do
            continue
        for value in event.summary.value:
            meta = value.metadata.plugin_data
            if meta.plugin_name != "hparams":
                continue
            data = plugin_data_pb2.HParamsPluginData.FromString(meta.content)
            which = data.WhichOneof("data")
            if which == "session_start_info":
                hparams = {**(hparams or {}), **{k: _value(v) for k, v in
                                                 data.session_start_info.hparams.items()}}
            elif which == "experiment":
                experiment = _experiment(data.experiment)
    return hparams, experiment


def _value(v: Any) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "number_value":
        return float(v.number_value)
    if kind == "bool_value":
        return bool(v.bool_value)
    if kind == "string_value":
        return str(v.string_value)
    return None


def _experiment(exp: Any) -> dict[str, Any]:
    hparams = [(h.name, h.display_name) for h in exp.hparam_infos]
    metrics = [(_metric_name(m.name.group, m.name.tag), m.display_name)
               for m in exp.metric_infos]
    return {"hparams": hparams, "metrics": metrics}


def _metric_name(group: str, tag: str) -> str:
    return f"{group}/{tag}" if group and group != "." else tag


def _config_values(raw: bytes | None) -> dict[str, Any]:
    """A flat `{name: number | str | bool}` from a run's JSON bytes, or `{}` when it is not
    one (none, too large, not an object, or a model's config: nothing a person would call
    hparams)."""
    if raw is None or len(raw) > MAX_CONFIG_BYTES:
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict) or {"class_name", "config"} <= set(data):
        return {}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        items = value.items() if isinstance(value, dict) else [("", value)]
        for sub, v in items:
            if isinstance(v, bool | int | float | str) and len(flat) < MAX_CONFIG_KEYS:
                flat[f"{key}.{sub}" if sub else str(key)] = v
    return flat


def _table(root: Path | str, sessions: dict[str, tuple[str, dict[str, Any]]],
           experiment: dict[str, Any]) -> HParamsRuns:
    if not sessions:
        return HParamsRuns(pd.DataFrame({"run": pd.Series(dtype=str),
                                         "source": pd.Series(dtype=str)}))
    declared = [n for n, _ in experiment.get("hparams", [])]
    seen = [k for _, values in sessions.values() for k in values]
    hparams = [*declared, *dict.fromkeys(k for k in seen if k not in declared)]
    display = {n: d for n, d in experiment.get("hparams", []) + experiment.get("metrics", [])
               if d}
    series = Logdir(root)
    series.refresh()
    scalars = series.series()
    wanted = [m for m, _ in experiment.get("metrics", [])]
    metrics: dict[str, str] = {}
    rows = []
    for run, (source, values) in sessions.items():
        row: dict[str, Any] = {"run": run, "source": source, **values}
        for (srun, tag), s in scalars.items():
            name = _session_metric(run, srun, tag)
            if name is None or (wanted and name not in wanted) or not len(s.value):
                continue
            direction = metrics.setdefault(name, metric_direction(tag))
            row[f"{name} (final)"] = float(s.value[np.argmax(s.step)])
            row[f"{name} (best)"] = _best(s.value, direction)
        rows.append(row)
    order = [m for m in wanted if m in metrics] + sorted(m for m in metrics if m not in wanted)
    columns = ["run", "source", *hparams,
               *(f"{m} ({w})" for m in order for w in ("final", "best"))]
    table = pd.DataFrame(rows).reindex(columns=columns)
    for name in hparams:  # protobuf keeps every number as a double: 32.0 units read as 32
        col = table[name]
        numbers = pd.to_numeric(col, errors="coerce")
        if col.notna().any() and numbers.notna().eq(col.notna()).all() \
                and (numbers.dropna() % 1 == 0).all() and col.map(type).ne(bool).all():
            table[name] = numbers.astype("Int64")
    return HParamsRuns(table.reset_index(drop=True), hparams, order,
                       {m: metrics[m] for m in order}, display)


def _session_metric(run: str, srun: str, tag: str) -> str | None:
    """The metric name of scalar series `(srun, tag)` within session `run`, or `None`."""
    if run == ".":
        return _metric_name(srun, tag)
    if srun == run:
        return tag
    if srun.startswith(run + "/"):
        return _metric_name(srun[len(run) + 1:], tag)
    return None


def _best(values: np.ndarray, direction: str) -> float:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan")
    if direction == "min":
        return float(v.min())
    if direction == "max":
        return float(v.max())
    return float(v[-1])
