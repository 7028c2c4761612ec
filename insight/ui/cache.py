"""All caching of the app. Keys are plain strings and numbers, never model objects.

Models are cached as resources (shared by sessions, never mutated); panel results as data.
Under the memo of expensive steps, the results worth sharing with other processes
(activation statistics, projections: `DISK_KINDS`) also go through the results cache
(`insight.results`, a `diskcache` folder), keyed by the content of their inputs (the model
file's and vectors files' SHA-256, the dataset's arrays) and their parameters, so another
`insight serve` replica on the same `INSIGHT_CACHE_DIR` reads them instead of computing.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from insight import results
from insight.data import Dataset
from insight.errors import InsightError
from insight.launch import parse_app_args
from insight.model.loading import LoadedModel, load_model
from insight.model.preflight import Preflight, preflight, resolve_model_path
from insight.model.samples import is_bundled
from insight.model.sandbox import LoadLimits, check_in_child, prestart
from insight.panels.probe import probe_dataset
from insight.panels.registry import PanelContext, build_panel, get_panel
from insight.ui.runtime import import_keras

__all__ = ["ModelRef", "get_model", "get_preflight", "model_ready", "panel", "get_dataset",
           "model_lock", "with_memo", "dataset_hash"]

# One lock per model object, living as long as the model does (weak keys: a model evicted
# from the resource cache takes its lock with it). Reentrant, so a builder that asks for
# another panel of the same model while holding it does not deadlock.
_MODEL_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MODEL_LOCKS_GUARD = threading.Lock()


def model_lock(loaded: LoadedModel) -> threading.RLock:
    """The lock every use of `loaded`'s model takes in the app.

    Streamlit runs each session's script in its own thread and the model is shared through
    the resource cache, but a Keras model is not safe for concurrent use: the probes patch
    each layer's `call` while tracing their `tf.function`s, so another thread running the
    model meanwhile records its tensors into the wrong trace (gradient norms of 0, wrong
    activation statistics; measured in `tests/unit/test_concurrency.py`). Panels that run
    the model hold this lock while they compute; other models are not held up.

    Example:

    >>> with model_lock(loaded):  # doctest: +SKIP
    ...     probs = loaded.model(x, training=False)
    """
    with _MODEL_LOCKS_GUARD:
        lock = _MODEL_LOCKS.get(loaded.model)
        if lock is None:
            lock = _MODEL_LOCKS[loaded.model] = threading.RLock()
        return lock


@dataclass(frozen=True)
class ModelRef:
    """Which model to load and how (all plain values, so it can key a cache)."""

    path: str
    safe_mode: bool = True
    custom_objects: str | None = None
    label: str = ""

    def stamp(self) -> str:
        """A key that changes when the file changes (path, mtime, size)."""
        try:
            _, file, fmt = resolve_model_path(self.path)
        except InsightError:
            return "missing"
        target = file / "saved_model.pb" if fmt == "savedmodel" else file
        try:
            st_ = target.stat()
        except OSError:
            return "missing"
        return f"{st_.st_mtime_ns}:{st_.st_size}"


def load_limits() -> LoadLimits:
    """The isolated loader's limits: `--load-timeout`/`--load-memory` among the app's script
    arguments (as `insight.ui.sidebar.launch_options` reads them), else the environment.

    Raises:
        UsageError: a limit that does not parse.
    """
    ctx = get_script_run_ctx()
    # Outside a script run (`insight serve`'s warm-up thread), the served script is ours.
    main = Path(ctx.main_script_path if ctx else Path(__file__).with_name("entry.py")).resolve()
    ours = bool(sys.argv) and Path(sys.argv[0]).resolve() == main
    opts = parse_app_args(sys.argv[1:] if ours else [])
    return LoadLimits.parse(opts.load_timeout, opts.load_memory)


@st.cache_resource(max_entries=4, show_spinner=False)
def _load(path: str, stamp: str, safe_mode: bool, custom_objects: str | None) -> LoadedModel:
    # A user's file is first loaded in a child with limits (insight.model.sandbox): a crash,
    # hang or memory bomb costs the child, never the server and its other sessions. The
    # bundled samples ship inside the package: they load here at once.
    bundled = is_bundled(path)
    limits = None if bundled else load_limits()
    import_keras()
    loaded = load_model(path, safe_mode=safe_mode, custom_objects=custom_objects,
                        isolate=limits or False)
    if not bundled:
        prestart()  # the next cache miss finds a child that has imported Keras already
    return loaded


_READY: set[tuple] = set()


def _key(ref: ModelRef) -> tuple:
    return (ref.path, ref.stamp(), ref.safe_mode, ref.custom_objects)


def get_model(ref: ModelRef) -> LoadedModel:
    """The loaded model for `ref`, loaded once per file version.

    Raises:
        InsightError: from `insight.load_model` (errors are not cached).
    """
    loaded = _load(*_key(ref))
    _READY.add(_key(ref))
    return loaded


def model_ready(ref: ModelRef) -> bool:
    """Whether `ref` has been loaded in this process already (a page can then skip what
    it shows only while a model loads)."""
    return _key(ref) in _READY


@st.cache_data(max_entries=16, show_spinner=False)
def _preflight(path: str, stamp: str) -> Preflight:
    # Read in a child first: a config bomb costs the child (no TensorFlow there: fast).
    if is_bundled(path):
        return preflight(path)
    return check_in_child(path, limits=load_limits(), load=False)


def get_preflight(ref: ModelRef) -> Preflight:
    """The file's static report (no TensorFlow, no code run), once per file version."""
    return _preflight(ref.path, ref.stamp())


# Panel results are shared, not copied (cache_data would unpickle every figure on every
# rerun): builders return fresh objects and nothing downstream mutates them.
@st.cache_resource(max_entries=128, show_spinner=False)
def _panel(model_key: str, name: str, params_json: str, _ctx: PanelContext) -> Any:
    if "data" in get_panel(name).uses and _ctx.loaded is not None:  # these run the model
        with model_lock(_ctx.loaded):
            return build_panel(name, _ctx, **json.loads(params_json))
    return build_panel(name, _ctx, **json.loads(params_json))


def _logdir_key(logdir: Any) -> str:
    """The logdir and a stamp of its files' sizes and mtimes, so results follow a run that is
    still being written (the Training page's live mode)."""
    from insight.curves.logdir import logdir_stamp

    return f"{logdir}@{logdir_stamp(logdir)}" if logdir else ""


def panel(name: str, ref: ModelRef, ctx: PanelContext, **params: Any) -> Any:
    """A registered panel's result for the current model, cached by plain keys."""
    uses = get_panel(name).uses
    phase = "loaded" if ctx.loaded is not None else "static"
    key = "|".join([ref.path, ref.stamp(), str(ref.safe_mode), str(ref.custom_objects), phase,
                    str(ctx.data_path) if "data" in uses else "",
                    _logdir_key(ctx.logdir) if "logdir" in uses else "",
                    f"{ctx.vectors_path}|{ctx.metadata_path}" if "vectors" in uses else "",
                    _compare_key(ctx.compare_path) if "compare" in uses else ""])
    return _panel(key, name, json.dumps(params, sort_keys=True), with_memo(ctx))


def _compare_key(path: Path | None) -> str:
    """The second model (or checkpoint folder) and a stamp of its files, so a file saved
    again, or a checkpoint added, is not served from the cache."""
    if path is None:
        return ""
    from insight.curves.logdir import logdir_stamp

    return f"{path}@{logdir_stamp(path)}"


@st.cache_resource(max_entries=32, show_spinner=False)
def _memo(key: str, _compute: Any) -> Any:
    return _compute()


def memo(key: str, compute: Any) -> Any:
    """What builders memoise through `PanelContext.cached` (a projection, a dataset), keyed by
    plain strings, shared across sessions and panels."""
    return _memo(key, compute)


def get_dataset(ctx: PanelContext) -> Dataset:
    """The data the probe panels read for the current model (`insight.data.dataset_for`),
    once per model file version and data path: the same memoised copy the panels use.

    Raises:
        DataError: the data cannot be read or does not fit the model (not cached).
    """
    return probe_dataset(with_memo(ctx))


def with_memo(ctx: PanelContext) -> PanelContext:
    """`ctx` with the app's shared memo (the caller's context is left as it is); the
    `DISK_KINDS` among its keys are also read from and kept in the results cache."""
    if ctx.memo is not None:
        return ctx
    holder: list[PanelContext] = []
    out = replace(ctx, memo=lambda key, compute: _disk_memo(holder[0], key, compute))
    holder.append(out)
    return out


def _stats_value(plain: dict) -> Any:
    from insight.probe.stats import ActivationStats

    return ActivationStats(**plain)


# kind -> (which memo keys, after the context's identity; value -> plain; plain -> value)
DISK_KINDS: dict[str, tuple[Any, Any, Any]] = {
    "activation_stats": (lambda k: k.startswith("probe:stats:"),
                         lambda s: {"table": s.table, "units": s.units,
                                    "histograms": s.histograms, "n_examples": s.n_examples},
                         _stats_value),
    # panels/projector.py's projection key: vectors|source|layer|reduce|sample|method|dims|...
    "projection": (lambda k: k.startswith("vectors|") and len(k.split("|")) == 12
                   and k.split("|")[5] in ("pca", "umap", "tsne"), lambda f: f, lambda f: f),
}


def _disk_memo(ctx: PanelContext, key: str, compute: Any) -> Any:
    prefix = ctx.identity() + "|"
    rel = key[len(prefix):] if key.startswith(prefix) else ""
    kind = next((k for k, (match, _, _) in DISK_KINDS.items() if rel and match(rel)), None)
    if kind is None:
        return _memo(key, compute)
    _, plain, value = DISK_KINDS[kind]
    return _memo(key, lambda: value(results.cached(kind, {"inputs": _content(ctx), "key": rel},
                                                   lambda: plain(compute()))))


_CONTENT: dict[str, dict] = {}


def _content(ctx: PanelContext) -> dict:
    """What the context's results depend on, by content: the model file's SHA-256, the
    dataset's arrays' SHA-256, the vectors files' and insight's version (once per identity)."""
    from insight import __version__

    ident = ctx.identity()
    if ident not in _CONTENT:
        def hashed(path: Any) -> str | None:
            try:
                return results.file_hash(path) if path else None
            except OSError:
                return None

        loaded = ctx.loaded
        if len(_CONTENT) > 256:
            _CONTENT.clear()
        _CONTENT[ident] = {
            "insight": __version__,
            "model": hashed(loaded.preflight.model_file) if loaded is not None else None,
            "safe_mode": loaded.safe_mode if loaded is not None else None,
            "data": dataset_hash(ctx) if loaded is not None else None,
            "vectors": hashed(ctx.vectors_path), "metadata": hashed(ctx.metadata_path)}
    return _CONTENT[ident]


def dataset_hash(ctx: PanelContext) -> str | None:
    """SHA-256 of the data the panels read (inputs, labels, class names, and for a stream
    its shards, spec and cap): what the shared results cache keys a result by.

    >>> dataset_hash(SimpleNamespace(dataset=lambda: ds))  # doctest: +SKIP
    '3f2a…'
    """
    import numpy as np

    try:
        ds = ctx.dataset()
    except InsightError:
        return None
    digest = hashlib.sha256()
    for part, arrays in (("x", ds.x), ("y", ds.y)):
        items = sorted(arrays.items()) if isinstance(arrays, dict) else [("", arrays)]
        for name, arr in items:
            if arr is None:
                continue
            a = np.ascontiguousarray(arr)
            digest.update(f"{part}:{name}:{a.dtype.str}:{a.shape}".encode())
            digest.update(a.data if not a.dtype.hasobject else repr(a.tolist()).encode())
    digest.update(json.dumps(ds.class_names, default=str).encode())
    if ds.stream is not None:  # the projector reads past the rows in memory, to its cap
        digest.update(json.dumps(_stream_stamp(ds.stream), default=str).encode())
    return digest.hexdigest()


def _stream_stamp(stream: Any) -> dict:
    """What a stream's results depend on beyond its first rows: its shards (a local one's
    size and mtime), spec, cap, and whether the cap cuts it."""
    def stamp(shard: str) -> Any:
        try:
            st_ = Path(shard).stat()
            return [shard, st_.st_size, st_.st_mtime_ns]
        except OSError:  # a URL: fetched per object version, named here
            return shard

    return {"name": stream.name, "shards": [stamp(s) for s in stream.shards],
            "spec": repr(stream.spec), "max_examples": stream.max_examples,
            "truncated": stream.truncated}
