"""The sidebar shared by every page: model picker, optional data and logdir.

What it chose lives in `st.session_state` (`insight_ref`, `insight_data`, `insight_logdir`,
and `insight_compare`: the second model of the Compare page) for the pages to read through
`insight.ui.widgets.require_model`.

A data path that cannot be used (nothing there, a `.txt` file) is warned about here AND kept
in `insight_data`, so the pages that read data refuse with the same error: a typo never
silently becomes the sample's bundled data or synthetic inputs.

A remote model (`insight serve s3://.../model.keras`, `--compare s3://...`, a URL typed on an
open local server) is fetched here into insight's cache (`insight.model.fetched`; a HEAD
request per `FETCH_TTL_S` once it is there) and the pages read that local copy, checked and
loaded as any stranger's file; the sidebar names it by its URL. A fetch that fails shows the
`StorageError` at the top of the page and no model is chosen: the rest of the app keeps
working. A remote logdir or data URL is passed on as given, for the pages to read.

Typed paths follow the server's policy (`insight.paths.typed_path`): inside `--root` when it
was given; none at all (no field is drawn) when served beyond localhost without it. A
refused path is said in the sidebar and nothing reads it.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from insight.data.conform import bundled_data
from insight.data.files import check_data_path
from insight.errors import DataError, InsightError, StorageError, UsageError
from insight.launch import LaunchOptions, parse_app_args
from insight.model.fetched import fetch_model
from insight.model.samples import Sample, list_samples
from insight.paths import typed_path
from insight.remote import is_remote
from insight.ui.cache import ModelRef
from insight.ui.feedback import show_error

__all__ = ["launch_options", "draw_sidebar", "default_ref", "local_copy", "FETCH_TTL_S"]

OTHER = "Another file…"
# How long a fetched remote model is taken as current before the bucket is asked again (one
# HEAD request; a changed object is then fetched again).
FETCH_TTL_S = 30.0
_FETCHED: dict[str, tuple[float, str]] = {}
_FETCHED_LOCK = threading.Lock()


def local_copy(url: str) -> str:
    """The local copy of the remote model (or folder) `url`, fetched at most once per object
    version and asked about at most every `FETCH_TTL_S` seconds; a local path as given.

    Raises:
        StorageError: the fetch failed (not remembered: the next rerun tries again).
        UnsupportedModelError, UsageError: the URL names no model, or is refused.
    """
    if not is_remote(url):
        return url
    with _FETCHED_LOCK:
        known = _FETCHED.get(url)
    if known and time.monotonic() - known[0] < FETCH_TTL_S and Path(known[1]).exists():
        return known[1]
    local = fetch_model(url)
    with _FETCHED_LOCK:
        _FETCHED[url] = (time.monotonic(), local)
    return local


def _shown(path: str) -> str:
    """A command-line path as the sidebar names it: a URL whole, a file by its last parts."""
    return path if is_remote(path) else "/".join(Path(path).parts[-2:])


def launch_options() -> LaunchOptions:
    """Script arguments when Streamlit was started on this app, else the environment.

    Under AppTest `sys.argv` is pytest's own, so it is only read when `sys.argv[0]` is the
    script being run.
    """
    ctx = get_script_run_ctx()
    main = Path(ctx.main_script_path).resolve() if ctx else None
    ours = bool(sys.argv) and main is not None and Path(sys.argv[0]).resolve() == main
    return parse_app_args(sys.argv[1:] if ours else [])


def _choices(opts: LaunchOptions) -> tuple[dict[str, ModelRef], dict[str, Sample]]:
    refs: dict[str, ModelRef] = {}
    samples: dict[str, Sample] = {}
    if opts.model:
        label = f"{_shown(opts.model)} (command line)"
        refs[label] = ModelRef(opts.model, not opts.unsafe, opts.custom_objects, label)
    for s in list_samples():
        label = f"Sample: {s.name}"
        co = str(s.custom_objects) if s.custom_objects else None
        refs[label] = ModelRef(str(s.model), True, co, label)
        samples[label] = s
    return refs, samples


def default_ref(opts: LaunchOptions) -> ModelRef | None:
    """The model the first page shows: the command line's, else the first sample (a remote
    one fetched: its `path` is the local copy).

    Raises:
        StorageError: a remote model that cannot be fetched.
    """
    refs, _ = _choices(opts)
    ref = next(iter(refs.values()), None)
    return replace(ref, path=local_copy(ref.path)) if ref is not None else None


def _fetched(ref: ModelRef | None) -> ModelRef | None:
    """`ref` with a remote path replaced by its local copy, fetched under a spinner; `None`
    after showing why it could not be (at the top of the page, which keeps working)."""
    if ref is None or not is_remote(ref.path):
        return ref
    try:
        with st.spinner(f"Fetching {ref.path} into insight's cache…"):
            return replace(ref, path=local_copy(ref.path), label=ref.label or ref.path)
    except StorageError as exc:  # the file was never read: said as a storage problem
        st.error(f"**Cannot fetch the model.** {exc}", icon=":material/cloud_off:")
    except InsightError as exc:  # a URL refused, or a folder holding no model
        show_error(exc)
    st.sidebar.error(f"**Model: not fetched.** {ref.path}", icon=":material/cloud_off:")
    return None


def _typed(label: str, key: str, given: str | None, opts: LaunchOptions, help: str
           ) -> tuple[str | None, bool]:
    """A path field: `(what to use, whether it was typed)`; `(None, True)` after showing why
    a typed path is refused (outside `--root`). A locked server draws no field at all."""
    if opts.locked and not opts.root:
        return given, False
    if opts.root:
        help += f" Paths stay inside {opts.root}; relative ones start there."
    typed = st.sidebar.text_input(label, key=key, placeholder=given or "optional",
                                  help=help).strip()
    if not typed:
        return given, False
    try:
        return str(typed_path(typed, root=opts.root, locked=opts.locked)), True
    except UsageError as exc:
        st.sidebar.error(f"**{label}: refused.** {exc}", icon=":material/block:")
        return None, True


def _companion(label: str, key: str, opts: LaunchOptions, given: str | None,
               bundled: Path | None, help: str) -> str | None:
    value, typed = _typed(label, key, given, opts, help)
    if value and is_remote(value):
        return value  # read by the pages (a remote logdir: listed there, never written)
    if value:
        if not Path(value).expanduser().exists():
            st.sidebar.warning(f"{label}: path not found. Received: {value!r}")
            return None
        return str(Path(value).expanduser().resolve())
    return None if typed else _bundled(label, bundled)


def _bundled(label: str, bundled: Path | None) -> str | None:
    """A sample's bundled file, said in the sidebar, or `None`."""
    if bundled is not None:
        st.sidebar.caption(f"{label}: using the `{bundled.name}` beside the model.")
        return str(bundled)
    return None


def _data_path(opts: LaunchOptions, bundled: Path | None, beside: Path | None,
               help: str) -> str | None:
    """The Data field: a path that cannot be used is warned about and still returned, so the
    data pages show why instead of quietly using other data. `bundled` is a sample's data
    (used when the field is empty), `beside` the `data.npz` any model would fall back to.
    A path refused by the server's policy is not returned (nothing may read it)."""
    value, typed = _typed("Data", "insight_data_path", opts.data, opts, help)
    if not value:
        return None if typed else _bundled("Data", bundled)
    if is_remote(value):
        return value  # the data readers fetch it; their errors show on the data pages
    path = Path(value).expanduser()
    instead = (f"the `{beside.name}` beside the model" if beside is not None else
               "synthetic inputs")
    try:
        path = check_data_path(path)
    except DataError as exc:  # its text names the path, never what the file holds
        missing = not path.exists()
        st.sidebar.warning(
            f"**Data: {'path not found' if missing else 'cannot be used'}.** The pages that "
            f"read data show this error instead of using other data: fix the path, or clear "
            f"it to use {instead}. {f'Received: {value!r}' if missing else exc}",
            icon=":material/error:")
    return str(path)


def draw_sidebar(opts: LaunchOptions) -> None:
    """Draw the sidebar and store the choices in session state."""
    st.sidebar.markdown("## :material/insights: insight")
    refs, samples = _choices(opts)
    options = list(refs) + ([] if opts.locked and not opts.root else [OTHER])
    choice = st.sidebar.selectbox(
        "Model", options, key="insight_model_choice",
        help="The model given on the command line, a bundled sample, or another file.")
    ref = refs.get(choice)
    if choice == OTHER:
        ref = _other_model(opts)
    ref = _fetched(ref)
    sample = samples.get(choice)
    if sample is not None and sample.description:
        st.sidebar.caption(sample.description)
    if ref is not None and not ref.safe_mode:
        st.sidebar.warning("Safe mode is off for this model (`--unsafe`): code stored in the "
                           "file may run.", icon=":material/warning:")
    st.session_state["insight_ref"] = ref
    st.session_state["insight_data"] = _data_path(
        opts, sample.data if sample else None,
        bundled_data(ref.path) if ref is not None and ref.path else None,
        "Inputs for activations and embeddings: .npz (x, y, class_names), .npy, .csv, or a "
        "folder of images.")
    st.session_state["insight_logdir"] = _companion(
        "Logdir", "insight_logdir_path", opts, opts.logdir,
        sample.logdir if sample else _logs_beside(ref),
        "A TensorBoard logdir, a CSVLogger .csv or a Keras history .json.")
    st.session_state["insight_compare"] = _compare_path(opts, samples)
    if opts.locked and not opts.root:
        st.sidebar.caption(":material/lock: Typed paths are off on this server (served beyond "
                           "localhost without `--root`).")


NO_COMPARE = "Nothing"


def _compare_path(opts: LaunchOptions, samples: dict[str, Sample]) -> str | None:
    """The "Compare with…" choice: `--compare`, a sample, or a typed path (a model file or
    a folder of checkpoints), for the Compare page."""
    choices: dict[str, str | None] = {NO_COMPARE: None}
    if opts.compare:
        choices[f"{_shown(opts.compare)} (command line)"] = opts.compare
    choices.update({label: str(s.model) for label, s in samples.items()})
    for s in samples.values():  # a sample's variants: the same model trained differently
        variants = s.model.parent / "variants"
        if variants.is_dir():
            choices.update({f"Sample: {s.name}, variant {v.stem}": str(v)
                            for v in sorted(variants.glob("*.keras"))})
    options = list(choices) + ([] if opts.locked and not opts.root else [OTHER])
    choice = st.sidebar.selectbox(
        "Compare with…", options, index=1 if opts.compare else 0, key="insight_compare_choice",
        help="A second model for the Compare page (or a folder of checkpoints), read with "
             "the first model's trust settings.")
    if choice != OTHER:
        return _compare_copy(choices[choice])
    value, _ = _typed("Second model path", "insight_compare_path", None, opts,
                      ".keras, .h5/.hdf5 or SavedModel directory, or a folder of checkpoints.")
    if value and is_remote(value):
        return _compare_copy(value)
    if value and not Path(value).expanduser().exists():
        st.sidebar.warning(f"Second model: path not found. Received: {value!r}")
        return None
    return str(Path(value).expanduser().resolve()) if value else None


def _compare_copy(path: str | None) -> str | None:
    """The second model's local path: a remote one fetched (said in the sidebar when that
    fails; the Compare and Checkpoints pages then show their empty state)."""
    if path is None or not is_remote(path):
        return path
    try:
        with st.sidebar, st.spinner(f"Fetching {path} into insight's cache…"):
            return local_copy(path)
    except InsightError as exc:
        st.sidebar.error(f"**Compare with: not fetched.** {exc}", icon=":material/cloud_off:")
        return None


def _other_model(opts: LaunchOptions) -> ModelRef | None:
    """The model path typed under "Another file…" (inside `--root` when given)."""
    help = ".keras, .h5/.hdf5, or a SavedModel directory. Loaded in safe mode."
    if opts.root:
        help += f" Paths stay inside {opts.root}; relative ones start there."
    path = st.sidebar.text_input("Model path", key="insight_model_path",
                                 placeholder="/path/to/model.keras", help=help).strip()
    if not path:
        return None
    try:
        # Not resolved without --root: the model's errors name the path as it was typed.
        # A URL is checked (and refused on a --root server) here; it is fetched by the caller.
        path = str(typed_path(path, root=opts.root, locked=False)) \
            if opts.root or is_remote(path) else path
    except UsageError as exc:
        st.sidebar.error(f"**Model path: refused.** {exc}", icon=":material/block:")
        return None
    return ModelRef(path, True, None, path)


def _logs_beside(ref: ModelRef | None) -> Path | None:
    """The `logs/` folder beside a model file, as the samples ship theirs (a sample given by
    its path on the command line finds its curves too)."""
    if ref is None or not ref.path:
        return None
    model = Path(ref.path).expanduser()
    logs = (model if model.is_dir() else model.parent) / "logs"
    return logs if logs.is_dir() else None
