"""The Profiler page's widgets: the profile picker, the capture form, the timeline controls.

Capturing runs `insight profile` in a child process: TensorFlow's profiler is one per
process (a capture must not collide with another session's), the app's model stays
untouched, and CPU memory events need an allocator chosen before TensorFlow starts.

A remote logdir (`s3://`, `gs://`) is listed for the picker (keys only); the profile that is
opened is fetched into insight's cache (its `.xplane.pb` files only) and converted locally.
Captures never write to a bucket: they go to a local folder per model, which the page names.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import streamlit as st

from insight.errors import InsightError
from insight.launch import LaunchOptions
from insight.model.fetched import fetched_from
from insight.panels.profiler import LEVEL_TITLES
from insight.panels.registry import PanelContext
from insight.profiler.capture import (
    capture_name,
    find_profiles,
    get_profile,
    writable_logdir,
)
from insight.profiler.fetched import RemoteRun, fetch_profile, list_remote_profiles
from insight.profiler.prepare import is_cached, prepare
from insight.remote import is_remote
from insight.ui.cache import ModelRef, panel
from insight.ui.widgets import param_of

__all__ = ["OP_COLUMNS", "OP_ORDER", "Choice", "profile_choices", "pick_profile",
           "require_profile", "capture_form", "capture_command", "profile_error", "profile_summary",
           "timeline_controls", "level_picker", "ops_table", "convert_profile", "local_choice"]

LISTING_TTL_S = 30  # a remote logdir is listed again after this (a run still being written)

CAPTURE_TIMEOUT_S = 600
OP_COLUMNS = {
    "layer": st.column_config.TextColumn("layer", width=80, help="The Keras layer whose name "
                                         "scope the op ran in (empty: outside any layer)."),
    "type": st.column_config.TextColumn("type", width=150, help="The op's TensorFlow type."),
    "category": st.column_config.TextColumn("category", width=110,
                                            help="The HLO op's kind (fusions as one)."),
    "self_time_us": st.column_config.NumberColumn("self time (µs)", format="%.1f", width=95),
    "self_time_percent": st.column_config.ProgressColumn("share", min_value=0.0,
                                                         max_value=100.0, format="%.1f%%",
                                                         width=90),
    "phase": st.column_config.TextColumn("phase", width="small",
                                         help="forward, backward (gradient_tape) or optimizer"),
    "occurrences": st.column_config.NumberColumn("runs", width="small"),
    "op": st.column_config.TextColumn("op", width="large"),
    "total_time_us": st.column_config.NumberColumn("total time (µs)", format="%.1f"),
}
# What a reader scans for first, in a column about 450 px wide (beside the treemap): which op,
# in which layer, how long. The rest is to the right.
OP_ORDER = {"framework": ("layer", "type", "self_time_us", "self_time_percent", "phase",
                          "occurrences", "op", "where", "total_time_us"),
            "hlo": ("op", "category", "self_time_us", "self_time_percent", "occurrences",
                    "layer", "module")}


@dataclass(frozen=True)
class Choice:
    """A profile the picker offers: the logdir panels read it from, and its run label."""

    logdir: str
    run: str
    label: str


def capture_dir(ref: ModelRef, logdir: str | None) -> Path:
    """Where the Capture button writes: the sidebar's logdir if writable (and not a bundled
    sample's), else a folder per model in insight's cache.

    On a served app (`--root`, or beyond localhost) a visitor's typed logdir is never
    written: only the logdir the server was started with, else the cache."""
    from insight.ui.sidebar import launch_options

    opts = launch_options()
    if (opts.locked or opts.root) and logdir and not _same(logdir, opts.logdir):
        logdir = None
    # a fetched model is named by its URL, not the cache's hash (as `insight profile URL`)
    name = capture_name(fetched_from(ref.path) or ref.path)
    return writable_logdir(logdir, name)  # a remote logdir: the local folder


def _same(a: str, b: str | None) -> bool:
    if is_remote(a) or is_remote(b):
        return a == b
    return b is not None and Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


@st.cache_resource(ttl=LISTING_TTL_S, max_entries=16, show_spinner=False)
def _remote_runs(url: str) -> tuple[RemoteRun, ...]:
    return tuple(list_remote_profiles(url))  # errors are not cached: the next rerun retries


def local_choice(choice: Choice) -> Choice:
    """`choice` read from a local folder: a remote profile's files fetched into insight's
    cache first (once per object version, under a spinner), the rest of its logdir not.

    Raises:
        StorageError: the fetch failed (nothing half-written is kept); DataError: the run is
            gone from the logdir.
    """
    if not is_remote(choice.logdir):
        return choice
    run = next((r for r in _remote_runs(choice.logdir) if r.label == choice.run), choice.run)
    size = f" ({run.size / 2**20:.1f} MB)" if isinstance(run, RemoteRun) else ""
    with st.spinner(f"Fetching the profile{size} from {choice.logdir} into insight's cache…"):
        return replace(choice, logdir=str(fetch_profile(choice.logdir, run)))


def profile_choices(ref: ModelRef, logdir: str | None) -> tuple[list[Choice], list[str]]:
    """Profiles under the sidebar's logdir and the ones captured into the cache for this
    model, newest first; and problems found while looking (shown, not raised)."""
    problems: list[str] = []
    remote = is_remote(logdir)
    roots = [(logdir, "logdir")] if logdir and not remote else []
    cache = capture_dir(ref, logdir)
    if not logdir or remote or Path(cache) != Path(logdir).expanduser():
        roots.append((str(cache), "captured here"))
    # (run folder name, logdir, run label, where): newest first by the folder's timestamp name
    runs: list[tuple[str, str, str, str]] = []
    if remote:
        try:
            runs += [(r.folder.rsplit("/", 1)[-1], logdir, r.label, "remote logdir")
                     for r in _remote_runs(logdir)]
        except InsightError as exc:
            problems.append(f"**The remote logdir cannot be listed.** {exc}")
    for root, where in roots:
        if not Path(root).exists():
            continue
        try:
            runs += [(r.folder.name, root, r.label, where) for r in find_profiles(root)]
        except InsightError as exc:
            problems.append(str(exc))
    runs.sort(key=lambda t: t[0], reverse=True)
    return [Choice(root, run, f"{run} ({where})") for _, root, run, where in runs], problems


def pick_profile(choices: list[Choice]) -> Choice:
    """A selectbox over the profiles (a fresh capture is preselected)."""
    labels = [c.label for c in choices]
    wanted = st.session_state.pop("prof_select_next", None)
    if wanted in labels:
        st.session_state["prof_run"] = wanted
    if st.session_state.get("prof_run") not in labels:
        st.session_state["prof_run"] = labels[0]
    label = st.selectbox("Profile", labels, key="prof_run",
                         help="Runs found under the sidebar's logdir (searched recursively "
                              "for plugins/profile/<run>/*.xplane.pb), newest first, and the "
                              "ones captured here.")
    return choices[labels.index(label)]


def require_profile(ref: ModelRef, logdir: str | None) -> Choice:
    """The profile to show, picked among `profile_choices` (problems found while looking are
    warnings); with none, how to get one and `st.stop()`."""
    choices, problems = profile_choices(ref, logdir)
    for problem in problems:
        st.warning(problem, icon=":material/warning:")
    if not choices:
        st.info("**No profile yet.** " + (f"Nothing under `{logdir}` matches "
                "`plugins/profile/<run>/*.xplane.pb`. " if logdir else
                "No logdir in the sidebar. ")
                + "Capture one above, or run `insight profile MODEL --logdir DIR`.",
                icon=":material/timer_off:")
        st.stop()
    return pick_profile(choices)


def capture_command(ref: ModelRef, target: Path, steps: int, *, train: bool, xla: bool,
                    data: str | None, opts: LaunchOptions) -> list[str]:
    """The `insight profile` command the Capture button runs: the page's model and data, and
    the streamed data's companions the server was started with, as `dataset_for` takes them
    in the app (`--features` for the launched `--data` only, `--data-fn` when no data is
    chosen, `--max-examples`).

    >>> capture_command(ref, Path("/tmp/p"), 5, train=False, xla=False,
    ...                 data="s/*.tfrecord", opts=opts)[-4:]  # doctest: +SKIP
    ['--data', 's/*.tfrecord', '--features', '/abs/spec.json']
    """
    cmd = [sys.executable, "-m", "insight.cli", "profile", ref.path, "--logdir", str(target),
           "--steps", str(int(steps))]
    cmd += ["--train"] if train else []
    cmd += ["--xla"] if xla else []
    cmd += [] if ref.safe_mode else ["--unsafe"]
    cmd += ["--custom-objects", ref.custom_objects] if ref.custom_objects else []
    cmd += ["--max-examples", str(opts.max_examples)] if opts.max_examples else []
    if data:
        cmd += ["--data", data]
        if opts.features and _same(data, opts.data):
            cmd += ["--features", opts.features]
    elif opts.data_fn:
        cmd += ["--data-fn", opts.data_fn]
    return cmd


def capture_form(ref: ModelRef, logdir: str | None, data: str | None) -> None:
    """Steps / train / XLA and a Capture button running `insight profile` in a child process;
    after a capture (and the rerun it asks for), what the command printed."""
    target = capture_dir(ref, logdir)
    with st.form("prof_capture", border=True):
        c1, c2, c3, c4 = st.columns([1, 1, 1, 1.4], vertical_alignment="bottom")
        steps = c1.number_input("Steps", 1, 200, 5, key="prof_steps",
                                help="Profiled steps, after 2 unprofiled warm-up steps.")
        train = c2.toggle("Training steps", key="prof_train",
                          help="fit steps on a copy of the model (needs labels); off: "
                               "inference.")
        xla = c3.toggle("XLA", key="prof_xla", help="Compile the step with jit_compile=True.")
        go = c4.form_submit_button("Capture profile", icon=":material/radio_button_checked:",
                                   type="primary")
        st.caption(f"Writes `{target}/plugins/profile/<run>/` (TensorBoard/XProf layout)"
                   + (": the sidebar's logdir is remote, and insight never writes to a "
                      "bucket (copy the run there yourself to share it)." if is_remote(logdir)
                      else "" if logdir and Path(target) == Path(logdir) else
                      ": the sidebar's logdir is a bundled sample's, read-only or not set."))
    if done := st.session_state.pop("prof_captured", None):
        st.success(f"**Captured.**\n```\n{done}\n```", icon=":material/check_circle:")
    if not go:
        return
    from insight.ui.sidebar import launch_options

    cmd = capture_command(ref, target, int(steps), train=train, xla=xla, data=data,
                          opts=launch_options())
    with st.spinner(f"Profiling {int(steps)} {'training' if train else 'inference'} steps "
                    "(TensorFlow starts in a child process)…"):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=CAPTURE_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            st.error(f"**Capture failed.** It took over {CAPTURE_TIMEOUT_S} s; try fewer steps.",
                     icon=":material/error:")
            return
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error: ")]
        why = lines[-1].removeprefix("error: ") if lines else proc.stderr.strip()[-800:]
        st.error(f"**Capture failed.** {why}", icon=":material/error:")
        return
    runs = find_profiles(target)
    if runs:
        st.session_state["prof_select_next"] = f"{runs[0].label} (" + (
            "logdir" if logdir and not is_remote(logdir)
            and Path(target) == Path(logdir).expanduser() else "captured here") + ")"
    st.session_state["prof_captured"] = proc.stdout.strip()
    st.rerun()


def convert_profile(choice: Choice) -> None:
    """The first time a profile is opened: convert what the page shows into insight's disk
    cache (`insight.profiler.prepare`: in a child process for a large profile, so the server
    does not keep xprof's peak memory) under a progress bar naming each stage (xprof takes
    minutes on a long profile). A profile converted before, by any process, shows nothing.

    Raises:
        InsightError: the profile cannot be read (the caller shows it).
    """
    run = get_profile(choice.logdir, choice.run)
    if is_cached(run):
        return
    with st.status(f"Converting the profile with xprof ({run.size / 2**20:.1f} MB): once, "
                   "then read from insight's cache", expanded=True) as status:
        bar = st.progress(0.0, text="Starting")
        try:
            prepare(run, progress=lambda fraction, stage: bar.progress(fraction, text=stage))
        except Exception:
            status.update(label="The profile could not be converted", state="error")
            raise
        status.update(label="Profile converted (kept in insight's cache)", state="complete",
                      expanded=False)


def profile_error(exc: BaseException) -> None:
    """A profile that cannot be read: its text, or a bug report for anything unexpected."""
    if isinstance(exc, InsightError):
        st.error(f"**Cannot read this profile.** {exc}", icon=":material/error:")
    else:
        from insight.ui.feedback import show_error

        show_error(exc)


def profile_summary(card: dict[str, Any]) -> None:
    """The `profile_card` as metrics, and how to open the profile in XProf itself."""
    cols = st.columns(5)
    inferred = card["steps_source"] == "inferred"
    cols[0].metric("Steps (inferred)" if inferred else "Steps (xprof)", card["steps"],
                   help=f"No step markers xprof counts: inferred from "
                        f"{card['steps_inferred_from']}." if inferred else
                        "Steps xprof counted from the profile's step markers.")
    cols[1].metric("Mean step", f"{card['step_ms_mean']:.2f} ms" if card["steps"] else "–")
    cols[2].metric("Events", f"{card['events']:,}")
    cols[3].metric("Threads", card["threads"])
    cols[4].metric("Span", f"{card['span_ms']:.1f} ms")
    with st.expander("Open in XProf (the full tool; its charts need Internet)"):
        st.code(card["xprof_command"], language="bash")
        st.caption(f"or `{card['tensorboard_command']}` (Profile tab). The file: "
                   f"`{card['folder']}`")
        for line in card["diagnostics"]:
            st.caption(f"xprof: {line}")


def level_picker() -> str:
    """TensorFlow ops or XLA (HLO) ops, for the `top_ops` panels."""
    level = param_of("top_ops", "level")
    return st.segmented_control("Level", level.choices, default=level.default,
                                key="prof_level", format_func=LEVEL_TITLES.get) or level.default


def ops_table(ref: ModelRef, ctx: PanelContext, run: str, level: str) -> None:
    """The `top_ops` table (its default `top`), with the note the panel gives it."""
    try:
        ops = panel("top_ops", ref, ctx, run=run, level=level,
                    top=param_of("top_ops", "top").default)
    except Exception as exc:  # noqa: BLE001  shown, the page goes on
        profile_error(exc)
        return
    order = [c for c in OP_ORDER.get(level, ()) if c in ops.columns]
    config = dict(OP_COLUMNS)
    if level == "hlo":  # HLO op names are short ("fusion.3") and come first
        config["op"] = st.column_config.TextColumn("op", width=150)
    st.dataframe(ops, hide_index=True, height=420, column_config=config,
                 column_order=order + [c for c in ops.columns if c not in order])
    if ops.attrs.get("note"):
        st.caption(ops.attrs["note"])


def timeline_controls(card: dict[str, Any], steps: list[tuple[int, str]]) -> dict[str, Any]:
    """Which part of the trace to draw: a marked step, a time window, or all of it."""
    options = ["Whole profile", "Time window"] + [f"{name} {n}" for n, name in steps]
    default = 2 if steps and card["events"] > 20_000 else 0
    c1, c2 = st.columns([1, 2], vertical_alignment="bottom")
    pick = c1.selectbox("Show", options, index=default, key=f"prof_show_{card['run']}",
                        help="A step (from its step marker), a window, or the whole trace. "
                             "Events narrower than a pixel are merged into grey bars; a "
                             "step or a short window shows them one by one.")
    params: dict[str, Any] = {"step": -1, "start_ms": -1.0, "end_ms": -1.0}
    span = max(float(card["span_ms"]), 1e-3)
    if pick == "Time window":
        lo, hi = c2.slider("Window (ms)", 0.0, span, (0.0, min(span, span / 4)),
                           step=max(span / 1000, 1e-3), format="%.3f",
                           key=f"prof_window_{card['run']}")
        params.update(start_ms=float(lo), end_ms=float(hi) if hi > lo else float(lo) + span /
                      1000)
    elif pick != "Whole profile":
        params["step"] = steps[options.index(pick) - 2][0]
    return params
