"""Profiles: capture one with step markers, find the ones under a logdir, convert them with xprof.

A profile is TensorFlow's standard layout, which TensorBoard and XProf open too::

    LOGDIR/plugins/profile/<run>/<host>.xplane.pb

Conversion goes through one module of the installed xprof package,
`xprof.convert.raw_to_tool_data.xspace_to_tool_data`, with no server. xprof writes cache files
beside the file it converts, so insight converts a symlink in a cache folder keyed by the
file's path, size and mtime: a read-only logdir (or a bundled sample) stays untouched.
What xprof returns is kept in insight's disk cache keyed by the file's content
(`insight.profiler.cache`): a profile is converted once, whichever process opens it next.
The timeline (`profile_trace`) is read from xprof's trace protobuf rather than its JSON and
kept as Parquet (`insight.profiler.trace_store`). Parsing the tools' JSON into tables is
`insight.profiler.tables`.

Example:

>>> from insight.profiler.capture import find_profiles, tool_data
>>> runs = find_profiles("sample_models/digits_cnn/logs")  # doctest: +SKIP
>>> runs[0].label  # doctest: +SKIP
'train/2026_11_26_19_12_21'
>>> tool_data(runs[0], "overview_page")[1]["p"]["steptime_ms_average"]  # doctest: +SKIP
'0.0'
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from insight.errors import DataError, UsageError
from insight.profiler import cache
from insight.profiler.cache import cache_root
from insight.profiler.steps import make_predict_step, make_train_step, repeat_batches
from insight.profiler.tables import Trace, with_layers

__all__ = ["ProfileRun", "find_profiles", "get_profile", "tool_data", "capture_profile",
           "TOOLS", "cache_root", "xprof_command", "writable_logdir", "profile_trace",
           "PAGE_TOOLS", "capture_name"]

TOOLS = ("overview_page", "trace_viewer", "framework_op_stats", "hlo_stats", "op_profile",
         "memory_profile", "input_pipeline_analyzer")
PROFILE_GLOB = "plugins/profile/*/*.xplane.pb"
# what the Profiler page reads ("trace": the parsed timeline, not trace_viewer's JSON)
PAGE_TOOLS = ("overview_page", "trace", "memory_profile", "framework_op_stats")


@dataclass(frozen=True)
class ProfileRun:
    """One captured profile: a `plugins/profile/<run>/` folder with one `.xplane.pb` per host.

    Attributes:
        label: where it is under the logdir, e.g. `"train/2026_11_26_19_12_21"`.
        folder: the run folder.
        hosts: its `.xplane.pb` files, sorted.
        logdir: the directory holding `plugins/` (what TensorBoard/XProf take as `--logdir`).
    """

    label: str
    folder: Path
    hosts: tuple[Path, ...]
    logdir: Path

    @property
    def stamp(self) -> str:
        """Changes when a file of the run changes (for cache keys)."""
        parts = []
        for p in self.hosts:
            try:
                s = p.stat()
                parts.append(f"{p.name}:{s.st_size}:{s.st_mtime_ns}")
            except OSError:
                parts.append(f"{p.name}:missing")
        return "|".join(parts)

    @property
    def size(self) -> int:
        """Bytes of its `.xplane.pb` files."""
        return sum(p.stat().st_size for p in self.hosts if p.exists())


def find_profiles(logdir: str | Path) -> list[ProfileRun]:
    """Every profile run under `logdir` (searched recursively), newest first.

    Args:
        logdir: a TensorBoard logdir, a `plugins/profile` folder, or one run folder; an
            `s3://`/`gs://` URL of one has its profiles (only those) fetched into insight's
            cache first (`insight.profiler.prepare.fetch_profiles`).

    Raises:
        UsageError: `logdir` does not exist.
        StorageError: a remote logdir that cannot be listed or read.
    """
    from insight.remote import is_remote

    if is_remote(logdir):
        from insight.profiler.fetched import fetch_profiles

        return find_profiles(fetch_profiles(str(logdir)))
    root = Path(logdir).expanduser()
    if not root.exists():
        raise UsageError("The logdir does not exist.", "Check the path, or capture a profile "
                         "into a new folder with `insight profile MODEL --logdir DIR`.",
                         f"logdir={str(logdir)!r}")
    files = list(root.glob(f"**/{PROFILE_GLOB}"))
    if root.name == "profile" or (root.parent.name == "profile"):  # given inside the layout
        files += list(root.glob("*.xplane.pb")) + list(root.glob("*/*.xplane.pb"))
    by_run: dict[Path, list[Path]] = {}
    for f in files:
        by_run.setdefault(f.parent.resolve(), []).append(f.resolve())
    runs = []
    for folder, hosts in by_run.items():
        base = folder.parent.parent.parent  # <logdir>/plugins/profile/<run>
        try:
            label = str(folder.relative_to(root.resolve()))
        except ValueError:
            label = folder.name
        label = label.replace("plugins/profile/", "").replace("plugins/profile", "") or \
            folder.name
        runs.append(ProfileRun(label, folder, tuple(sorted(set(hosts))), base))
    return sorted(runs, key=lambda r: (r.folder.name, r.label), reverse=True)


def get_profile(logdir: str | Path, run: str = "") -> ProfileRun:
    """The run called `run` under `logdir` (its label or folder name), or the newest one.

    Raises:
        DataError: no profile under `logdir`.
        UsageError: no run called `run` (the message lists them).
    """
    runs = find_profiles(logdir)
    if not runs:
        raise DataError(f"No profile under {logdir}: no {PROFILE_GLOB} file was found.",
                        "Capture one with the Capture button or `insight profile MODEL "
                        "--logdir DIR`, or give the logdir of a run profiled with "
                        "keras.callbacks.TensorBoard(profile_batch=...).",
                        f"logdir={str(logdir)!r}")
    if not run:
        return runs[0]
    for r in runs:
        if run in (r.label, r.folder.name):
            return r
    raise UsageError(f"No profile run {run!r} under {logdir}. Runs are: "
                     f"{', '.join(r.label for r in runs)}.", "", f"run={run!r}")


def _mirror(run: ProfileRun, host: Path) -> Path:
    """A symlink to `host` in a cache folder keyed by the run's files, for xprof to convert
    (it writes its own caches beside the file)."""
    key = hashlib.sha256(f"{host}|{run.stamp}".encode()).hexdigest()[:16]
    folder = cache_root() / "xprof" / key / "plugins" / "profile" / run.folder.name
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / host.name
    if not link.exists():
        try:
            link.symlink_to(host)
        except OSError:  # no symlinks here: xprof reads the original (and may write beside it)
            return host
    return link


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise DataError(f"The profile file {path.name} is missing.", "Capture the profile "
                        "again.", f"path={str(path)!r}")
    if path.stat().st_size == 0:
        raise DataError(f"The profile file {path.name} is empty (0 bytes): the capture was "
                        "interrupted before TensorFlow wrote it.", "Capture the profile again.",
                        f"path={str(path)!r}")


def _convert(path: Path, run: ProfileRun, tool: str, params: dict[str, Any]) -> Any:
    """xprof's raw output for one tool (`bytes`/`str`), or a `DataError`."""
    from xprof.convert import raw_to_tool_data

    try:
        if tool == "trace_viewer" and params.get("format") == "proto":
            # the protobuf xprof's C++ side returns before its Python side turns it into
            # JSON event by event (`xspace_to_tool_data`'s trace_viewer branch, minus that)
            from xprof.convert import _pywrap_profiler_plugin as pywrap

            raw, ok = pywrap.xspace_to_tools_data([str(_mirror(run, path))], tool,
                                                  {"use_saved_result": True})
            raw = raw if ok else None
        else:
            raw, _ = raw_to_tool_data.xspace_to_tool_data([str(_mirror(run, path))], tool,
                                                          dict(params))
    except Exception as exc:  # noqa: BLE001  xprof raises anything from its C++ side
        raise DataError(f"xprof could not convert {path.name} with its {tool} tool "
                        f"({type(exc).__name__}: {exc}).", "Capture the profile again.",
                        f"path={str(path)!r}") from exc
    if raw is None or raw == b"" or raw == "":
        raise DataError(f"{path.name} is not a profile xprof can read: it is corrupt or "
                        "truncated (not an XSpace protobuf).", "Capture the profile again; "
                        "do not copy .xplane.pb files while TensorFlow is still writing them.",
                        f"path={str(path)!r}, bytes={path.stat().st_size}")
    return raw


def _cached_raw(run: ProfileRun, host: int, tool: str, name: str,
                params: dict[str, Any]) -> bytes:
    """xprof's output for `tool`, from the disk cache (`insight.profiler.cache`) when this
    file's content was converted before, else converted now and stored."""
    path = run.hosts[host]
    entry = cache.entry_path(cache.content_hash(path), name)
    if (data := cache.read_blob(entry)) is not None:
        return data
    with cache.converting(entry):  # a second process converting it waits, then reads
        if (data := cache.read_blob(entry)) is not None:
            return data
        cache.report(f"Converting {tool} with xprof ({run.size / 2**20:.1f} MB)")
        raw = _convert(path, run, tool, params)
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        try:
            cache.write_blob(entry, data)
        except OSError:  # a read-only or full cache: converted again next time
            pass
    return data


def tool_data(run: ProfileRun, tool: str, params: dict[str, Any] | None = None,
              host: int = 0) -> Any:
    """One xprof tool's output for one host of `run`, parsed from JSON.

    Without `params` the output is cached on disk, keyed by the file's content
    (`insight.profiler.cache`): a profile converted once, by any process, is read back.

    Args:
        run: a `ProfileRun` (see `find_profiles`).
        tool: one of `TOOLS`.
        params: the tool's parameters, passed to xprof as they are (and then not cached).
            Defaults to `None`.
        host: which host file. Defaults to `0`.

    Returns:
        The tool's JSON (dicts and lists), as xprof returns it.

    Raises:
        UsageError: an unknown tool.
        DataError: the file is missing, empty or not an XSpace xprof can read.
    """
    if tool not in TOOLS:
        raise UsageError(f"Unknown profile tool {tool!r}. Tools are: {', '.join(TOOLS)}.", "",
                         f"tool={tool!r}")
    path = run.hosts[host]
    _check_file(path)
    if params:
        raw = _convert(path, run, tool, dict(params))
    elif tool == "trace_viewer":
        from insight.profiler.trace_store import proto_to_json

        return proto_to_json(_cached_raw(run, host, tool, "trace_viewer.pb",
                                         {"format": "proto"}))
    else:
        raw = _cached_raw(run, host, tool, f"{tool}.json", {})
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise DataError(f"xprof's {tool} output for {path.name} is not JSON.",
                        "Capture the profile again.", f"path={str(path)!r}") from exc


def profile_trace(run: ProfileRun, layers: frozenset[str] = frozenset(), host: int = 0
                  ) -> Trace:
    """The timeline of one host of `run` (`insight.profiler.tables.Trace`), its ops
    attributed to `layers`: from the disk cache's Parquet when this file was read before,
    else from xprof's trace protobuf (no JSON), then stored.

    Raises:
        DataError: the file is missing, empty or not an XSpace xprof can read.
    """
    from insight.profiler.trace_store import load_trace, save_trace, trace_from_proto

    path = run.hosts[host]
    _check_file(path)
    entry = cache.entry_path(cache.content_hash(path), "trace.parquet")
    if (trace := load_trace(entry, layers)) is not None:
        return trace
    with cache.converting(entry):
        if (trace := load_trace(entry, layers)) is not None:
            return trace
        raw = _cached_raw(run, host, "trace_viewer", "trace_viewer.pb", {"format": "proto"})
        cache.report(f"Reading the timeline ({len(raw) / 2**20:.0f} MB of events)")
        trace = trace_from_proto(raw)
        del raw
        try:
            cache.atomic_write(entry, lambda tmp: save_trace(tmp, trace))
        except OSError:
            pass
    return with_layers(trace, layers) if layers else trace


def capture_name(model: str) -> str:
    """The folder name of a model's captures in insight's cache (`writable_logdir`), the one
    name `insight profile MODEL` and the app's Capture button both use: `<folder>_model` for a
    `model.keras`, else the file's stem; a fetched model is named by its URL, so pass the URL
    rather than the cache's copy.

    >>> capture_name("s3://runs/digits_cnn/model.keras"), capture_name("/m/tiny.keras")
    ('digits_cnn_model', 'tiny')
    """
    p = Path(model.split("://", 1)[1]) if "://" in model else Path(model)
    return f"{p.parent.name}_{p.stem}" if p.stem == "model" else p.stem


def writable_logdir(logdir: str | Path | None, model_name: str) -> Path:
    """Where a capture goes: `logdir` when it can be written, else a folder per model in
    insight's cache (a bundled sample's logdir, or a remote `s3://`/`gs://` one, is never
    written)."""
    from insight.model.samples import sample_root
    from insight.remote import is_remote

    if logdir and not is_remote(logdir):  # a bucket is never written: captures stay local
        p = Path(logdir).expanduser()
        inside_samples = str(p.resolve()).startswith(str(sample_root().resolve()))
        try:
            if not inside_samples:
                p.mkdir(parents=True, exist_ok=True)
                if os.access(p, os.W_OK):
                    return p
        except OSError:
            pass
    return cache_root() / "profiles" / model_name


def xprof_command(logdir: str | Path, port: int = 8791) -> str:
    """The command that opens the full XProf UI on `logdir` (it needs Internet for charts)."""
    return f"xprof server --logdir {Path(logdir)} --port {port}"


def capture_profile(loaded: Any, dataset: Any, logdir: str | Path, *, steps: int = 5,
                    train: bool = False, warmup: int = 2, batch_size: int = 32,
                    xla: bool = False, on_step: Callable[[int], None] | None = None,
                    ) -> ProfileRun:
    """Profile `steps` inference (or training) steps of a model, each marked as a step.

    Runs `warmup` unprofiled steps first (tracing and compiling happen there), then `steps`
    steps under `tf.profiler.experimental`, each inside
    `tf.profiler.experimental.Trace("predict" | "train", step_num=i, _r=1)`, the step marker
    xprof's step-time breakdown needs. Training runs on a copy of the model (the given model
    keeps its weights). On CPU, memory events are recorded only when
    `TF_CPU_ALLOCATOR_USE_BFC=true` was set before TensorFlow started (`insight profile` sets
    it).

    Args:
        loaded: an `insight.model.loading.LoadedModel`.
        dataset: an `insight.data.Dataset` fitted to the model (`insight.data.dataset_for`).
        logdir: where to write `plugins/profile/<run>/<host>.xplane.pb`.
        steps: profiled steps. Defaults to `5`.
        train: training steps (needs labels) instead of inference. Defaults to `False`.
        warmup: unprofiled steps first. Defaults to `2`.
        batch_size: examples per step. Defaults to `32`.
        xla: compile the step with XLA (`jit_compile=True`). Defaults to `False`.
        on_step: called with each profiled step's index. Defaults to `None`.

    Returns:
        The new `ProfileRun`.

    Raises:
        UsageError: bad `steps`/`batch_size`, or training without labels.
    """
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"`{name}` must be a positive integer.", "", f"{name}={value!r}")
    if train and dataset.y is None:
        raise UsageError("Training steps need labels, and the data has none.",
                         "Give a data file with labels (an .npz with `y`), or profile "
                         "inference (without --train).", f"data={dataset.name!r}")
    import tensorflow as tf

    # the LoadedModel, not its model: training steps read the file's compile config
    step, kind = (make_train_step(loaded, xla) if train else
                  make_predict_step(loaded.model, xla)), "train" if train else "predict"
    batches = repeat_batches(dataset, batch_size)
    for _ in range(max(0, warmup)):
        step(*next(batches))
    root = Path(logdir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    before = {r.folder for r in find_profiles(root)}
    options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=2,
                                                       python_tracer_level=0,
                                                       device_tracer_level=1)
    tf.profiler.experimental.start(str(root), options=options)
    try:
        for i in range(steps):
            xb, yb = next(batches)
            with tf.profiler.experimental.Trace(kind, step_num=i, _r=1):
                step(xb, yb)
            if on_step is not None:
                on_step(i)
    finally:
        tf.profiler.experimental.stop()
    new = [r for r in find_profiles(root) if r.folder not in before]
    if not new:  # same-second run folder reused: take the newest
        new = find_profiles(root)
    return new[0]
