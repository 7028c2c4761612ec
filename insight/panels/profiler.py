"""The Profiler's panels: profile card, step-time breakdown, timeline, top ops, memory.

Every panel reads the profile runs under `ctx.logdir` (`uses=("logdir",)`) and takes the run
(its label, `""` for the newest) as a parameter. Converted tool data and the parsed timeline
are memoised per run file version (`PanelContext.cached`), so switching a step or a window
only redraws. Importing this module registers the panels.

Example:

>>> from insight.panels import build_panel, PanelContext
>>> ctx = PanelContext(preflight=pf, logdir=Path("sample_models/digits_cnn/logs"))  # doctest: +SKIP
>>> build_panel("trace_timeline", ctx, step=0).layout.title.text  # doctest: +SKIP
'Timeline: train/2026_11_26_19_12_21, step 0 ...'
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from insight.doctor import Finding, checks_compute
from insight.errors import UsageError
from insight.figures.profiler import (
    memory_figure,
    ops_treemap,
    step_breakdown_figure,
    timeline_figure,
)
from insight.panels.doctor import PAGE_CHECKS, page_report
from insight.panels.registry import Panel, PanelContext, Param, register
from insight.profiler.breakdown import run_steps
from insight.profiler.capture import (
    ProfileRun,
    find_profiles,
    get_profile,
    tool_data,
    xprof_command,
)
from insight.profiler.capture import profile_trace as run_trace
from insight.profiler.tables import (
    Trace,
    framework_ops,
    hlo_ops,
    layer_names,
    memory_timeline,
    overview_summary,
)
from insight.profiler.timeline import step_window, timeline_bars

__all__ = ["NO_STEPS", "NO_MEMORY", "LEVEL_TITLES", "PROFILE_CHECKS", "profile_trace",
           "resolve_run", "top_ops_note", "profile_findings"]

NO_STEPS = f"{checks_compute.NO_STEPS} {checks_compute.MARK_STEPS}"  # the CLI's words
NO_MEMORY = ("No memory events in this profile. On CPU, TensorFlow records allocations only "
             "when `TF_CPU_ALLOCATOR_USE_BFC=true` is set before it starts, as "
             "`insight profile` and the Capture button do; GPU profiles always have them.")

PROFILE_CHECKS = PAGE_CHECKS["profiler"]  # the doctor's checks of one profile
LEVEL_TITLES = {"framework": "TensorFlow ops", "hlo": "XLA (HLO) ops"}
RUN = Param("run", "str", "", help="Profile run label under the logdir (empty: the newest).")
LEVEL = Param("level", "str", "framework", ("framework", "hlo"),
              help="TensorFlow ops, or XLA (HLO) ops.")
TOP = Param("top", "int", 25, help="How many ops to list.")


def resolve_run(ctx: PanelContext, run: str) -> ProfileRun:
    """The profile run `run` under the context's logdir (the newest for `""`)."""
    if ctx.logdir is None:
        raise UsageError("No logdir: the profiler reads profiles from a logdir.",
                         "Give one in the sidebar (or `--logdir`), or capture a profile.",
                         "logdir=None")
    return get_profile(ctx.logdir, run)


def _layers(ctx: PanelContext) -> frozenset[str]:
    return layer_names(ctx.preflight, ctx.loaded)


def _tool(ctx: PanelContext, run: ProfileRun, tool: str) -> Any:
    # The key is `insight.profiler.breakdown.run_steps`' (the doctor converts it too).
    return ctx.cached(f"xprof|{run.folder}|{run.stamp}|{tool}", lambda: tool_data(run, tool))


def profile_trace(ctx: PanelContext, run: ProfileRun) -> Trace:
    """The run's parsed timeline, memoised per file version (`run_steps`' key)."""
    return ctx.cached(f"trace|{run.folder}|{run.stamp}",
                      lambda: run_trace(run, _layers(ctx)))  # parsed, cached on disk


def _runs(ctx: PanelContext) -> pd.DataFrame:
    if ctx.logdir is None:
        return pd.DataFrame(columns=["run", "hosts", "size_kb", "folder"])
    runs = find_profiles(ctx.logdir)
    return pd.DataFrame({"run": [r.label for r in runs],
                         "hosts": [", ".join(h.name.removesuffix(".xplane.pb") for h in r.hosts)
                                   for r in runs],
                         "size_kb": [round(r.size / 1024, 1) for r in runs],
                         "folder": [str(r.folder) for r in runs]})


def profile_findings(ctx: PanelContext, r: ProfileRun) -> list[Finding]:
    """The doctor's findings about one profile run (steps it had to infer or could not find,
    a step waiting for its input): what the Profiler page says under its breakdown, read
    from the doctor (`page_report` for the run), on the same converted data (the memo keys
    are `run_steps`').

    Example:

    >>> [f.check for f in profile_findings(ctx, resolve_run(ctx, ""))]  # doctest: +SKIP
    ['profile_steps']
    """
    return page_report(ctx, "profiler", r).findings


def _note(findings: list[Finding], check: str) -> str:
    return next((f"{f.explanation} {f.suggestion}" for f in findings if f.check == check), "")


def _profile_steps(ctx: PanelContext, r: ProfileRun) -> pd.DataFrame:
    """xprof's step breakdown, else the one inferred from the timeline, memoised."""
    return run_steps(r, _layers(ctx), ctx.cached)


def _card(ctx: PanelContext, run: str) -> dict[str, Any]:
    r = resolve_run(ctx, run)
    summary = overview_summary(_tool(ctx, r, "overview_page"))
    trace = profile_trace(ctx, r)
    steps = _profile_steps(ctx, r)
    findings = profile_findings(ctx, r)
    if steps.attrs["source"] == "inferred":  # xprof's own numbers are 0: none it counted
        times = steps["step_time_ms"]
        summary.update(steps=len(steps), step_ms_mean=float(times.mean()),
                       step_ms_min=float(times.min()), step_ms_max=float(times.max()))
    return {"run": r.label, "folder": str(r.folder), "logdir": str(r.logdir),
            "hosts": [h.name for h in r.hosts], "size_bytes": r.size, **summary,
            "steps_source": steps.attrs["source"],
            "steps_inferred_from": steps.attrs["inferred_from"],
            "steps_note": _note(findings, "profile_steps") if len(steps) else "",
            "findings": [f.to_dict() for f in findings],
            "marked_steps": len(trace.steps), "events": len(trace.events),
            "threads": len(trace.threads), "span_ms": trace.span[1] / 1e3,
            "step_markers": [(int(n), str(name)) for n, name in
                             zip(trace.steps["step"], trace.steps["name"], strict=True)],
            "memory_events": len(memory_timeline(_tool(ctx, r, "memory_profile"))),
            "no_steps_reason": _note(findings, "profile_steps") if steps.empty else "",
            "xprof_command": xprof_command(ctx.logdir),
            "tensorboard_command": f"tensorboard --logdir {ctx.logdir}"}


def _steps(ctx: PanelContext, run: str):
    r = resolve_run(ctx, run)
    steps = _profile_steps(ctx, r)
    title = f"Step time: {r.label}"
    n = f"{len(steps)} step{'s' if len(steps) != 1 else ''}"
    if steps.empty:
        title += ("<br><sup>empty: no step markers and no repeated train or predict calls in "
                  "this profile</sup>")
    elif steps.attrs["source"] == "inferred":
        title += (f"<br><sup>{n} inferred from {steps.attrs['inferred_from']} (no xprof step "
                  f"markers), mean {steps['step_time_ms'].mean():.2f} ms, split by insight "
                  "from the timeline</sup>")
    else:
        title += (f"<br><sup>{n}, mean {steps['step_time_ms'].mean():.2f} ms "
                  "(xprof overview)</sup>")
    fig = step_breakdown_figure(steps, title=title)
    fig.layout.meta = {"steps_source": steps.attrs["source"],
                       "inferred_from": steps.attrs["inferred_from"]}
    return fig


def _timeline(ctx: PanelContext, run: str, step: int, start_ms: float, end_ms: float,
              min_px: float, width_px: int):
    r = resolve_run(ctx, run)
    trace = profile_trace(ctx, r)
    if trace.events.empty:
        raise UsageError("The profile's trace holds no events to draw.", "Capture it again "
                         "with more steps.", f"run={r.label!r}")
    if step >= 0:
        lo, hi = step_window(trace, step)
        where = f"step {step}"
    else:
        lo = start_ms * 1e3 if start_ms >= 0 else -1.0
        hi = end_ms * 1e3 if end_ms >= 0 else -1.0
        where = "whole profile" if lo < 0 and hi < 0 else "window"
    bars = timeline_bars(trace, lo, hi, width_px=width_px, min_px=min_px)
    a = bars.attrs
    w0, w1 = a["window"]
    sub = f"{where} {w0 / 1e3:.2f}–{w1 / 1e3:.2f} ms · {a['events']:,} events"
    if a["merged_events"]:
        sub += (f" · {a['merged_events']:,} narrower than {min_px:g} px merged into "
                f"{a['merged_bars']:,} grey bars: pick a step or a window to see them")
    fig = timeline_figure(bars, trace.rows, title=f"Timeline: {r.label}<br><sup>{sub}</sup>",
                          steps=trace.steps)
    fig.layout.meta = {"events": a["events"], "merged_events": a["merged_events"],
                       "bars": len(bars), "window_us": [w0, w1]}
    return fig


def _ops(ctx: PanelContext, run: str, level: str) -> pd.DataFrame:
    r = resolve_run(ctx, run)
    if level == "hlo":
        return hlo_ops(_tool(ctx, r, "hlo_stats"), profile_trace(ctx, r))
    return framework_ops(_tool(ctx, r, "framework_op_stats"), _layers(ctx))


def top_ops_note(ops: pd.DataFrame, level: str) -> str:
    """One line under an ops table (`""`: nothing to add): why it is empty, that the step ran
    as one XLA-compiled function (a single `__inference...` TensorFlow op), or that the XLA
    ops were summed from the timeline (xprof has no HLO statistics for CPU)."""
    if ops.empty:
        return ("No XLA ops ran in this profile: capture with **XLA** on to see them."
                if level == "hlo" else "No TensorFlow ops in this profile.")
    if level != "hlo" and str(ops["type"].iloc[0]).startswith("__inference"):
        return ("The step ran as one XLA-compiled function: choose **XLA (HLO) ops** to see "
                "inside it.")
    if ops.attrs.get("source") == "timeline":
        return ("xprof has no HLO statistics for CPU: these are summed from the timeline's "
                "XLA events.")
    return ""


def _top_ops(ctx: PanelContext, run: str, level: str, top: int) -> pd.DataFrame:
    """The `top` ops by self time; `attrs` hold the total count and `note` (`top_ops_note`)."""
    ops = _ops(ctx, run, level)
    out = ops.head(max(1, top)).copy()
    out.attrs.update(ops.attrs, total=len(ops), note=top_ops_note(ops, level))
    return out


def _treemap(ctx: PanelContext, run: str, level: str, top: int):
    ops = _ops(ctx, run, level)
    name = "TensorFlow" if level == "framework" else "XLA (HLO)"
    if ops.empty:
        title = f"{name} ops by self time<br><sup>none in this profile</sup>"
    else:  # short lines: the map often sits in a narrow column
        title = (f"{name} ops by self time<br><sup>{resolve_run(ctx, run).label}: top "
                 f"{min(len(ops), max(top, 1) * 4)} of {len(ops)} ops</sup><br><sup>"
                 + ("rectangles by layer, then op type</sup>" if level == "framework" else
                    "rectangles by HLO category, then op</sup>"))
    return ops_treemap(ops, title=title, group="layer" if level == "framework" else "category",
                       max_ops=max(top, 1) * 4)


def _memory(ctx: PanelContext, run: str):
    r = resolve_run(ctx, run)
    mem = memory_timeline(_tool(ctx, r, "memory_profile"))
    if mem.empty:
        raise UsageError(NO_MEMORY, "", f"run={r.label!r}")
    peak = mem["peak_mib"].max()
    return memory_figure(mem, title=f"Memory over time: {r.label}<br><sup>peak {peak:.2f} "
                                    f"MiB, {len(mem):,} allocation events</sup>")


_P = dict(needs_model=False, uses=("logdir",))
register(Panel("profile_runs", "Profile runs", "table", lambda ctx: _runs(ctx), **_P,
               description="Every profile found under the logdir, newest first."))
register(Panel("profile_card", "Profile", "card", _card, (RUN,), **_P,
               description="Steps, events, xprof's diagnostics and the XProf command line."))
register(Panel("step_breakdown", "Step-time breakdown", "figure", _steps, (RUN,), **_P,
               description="Each step's time by category, from xprof's overview page (or "
               "inferred from the timeline when the profile has no step markers)."))
register(Panel("trace_timeline", "Timeline", "figure", _timeline, (
    RUN, Param("step", "int", -1, help="A marked step to show (-1: use the window)."),
    Param("start_ms", "float", -1.0, help="Window start in ms (-1: the trace's start)."),
    Param("end_ms", "float", -1.0, help="Window end in ms (-1: the trace's end)."),
    Param("min_px", "float", 1.0, help="Events narrower than this many pixels are merged."),
    Param("width_px", "int", 1400, help="Chart width the merging assumes.")), **_P,
    description="Threads as rows, ops as bars by Keras layer; small ops merged per pixel."))
register(Panel("top_ops", "Top ops by self time", "table", _top_ops, (RUN, LEVEL, TOP), **_P,
               description="TensorFlow or XLA ops by self time, with their Keras layer."))
register(Panel("top_ops_treemap", "Self time treemap", "figure", _treemap, (RUN, LEVEL, TOP),
               **_P, description="Self time by layer, op type and op."))
register(Panel("memory_profile", "Memory over time", "figure", _memory, (RUN,), **_P,
               description="Memory in use and its peak over the profile, per allocator."))
