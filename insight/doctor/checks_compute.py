"""Checks of how the model computes: its profile (steps that cannot be told apart, a step
that waits for its input) and XLA (compiling that makes the forward pass slower).

The profile is the newest one under the logdir (`Evidence.profile`: its step breakdown,
xprof's or inferred from the timeline); the XLA step times are measured only when asked
(`Evidence(xla=True)`, `insight doctor --xla`) or handed over by the Compiler page.
The Profiler and Compiler pages show these findings where they show the numbers.

Example:

>>> [f.check for f in diagnose(loaded, logdir="logs").findings  # doctest: +SKIP
...  if f.category == "compute"]
['profile_steps']
"""

from __future__ import annotations

import numpy as np

from insight.doctor.evidence import Evidence
from insight.doctor.findings import Finding
from insight.doctor.registry import check

__all__ = ["INPUT_SHARE", "XLA_SLOWER", "SLOW_ON_CPU", "NO_STEPS", "MARK_STEPS"]

INPUT_SHARE = 0.5  # share of a step spent waiting for the next batch: input-bound
XLA_SLOWER = 1.1  # XLA's median step over tf.function's: slower beyond timing noise
SLOW_ON_CPU = frozenset({"DepthwiseConv2D", "SeparableConv2D"})  # XLA's depthwise convolutions

MARK_STEPS = ("`insight profile MODEL --logdir DIR` (or the Profiler page's Capture button) "
              "captures a profile with every step marked; in your own loop, wrap each step in "
              "`tf.profiler.experimental.Trace('train', step_num=i, _r=1)`.")
NO_STEPS = ("No steps in this profile: it has no step markers (xprof's \"No step marker "
            "observed\") and no repeated train or predict function calls to infer them from, "
            "so its time cannot be split into steps. The timeline and the ops' self times are "
            "complete.")


def _where(ev: Evidence) -> str:
    return ev.profile[0].label


@check("profile_steps", "compute", needs=("profile",))
def profile_steps(ev: Evidence) -> list[Finding]:
    """A profile without step markers: no steps at all, or steps insight had to infer."""
    run, steps = ev.profile
    source = steps.attrs.get("source", "")
    if source == "xprof":
        return []
    if steps.empty:
        return [Finding(
            "profile_steps", "compute", "info", None, {"steps": 0, "run": run.label},
            NO_STEPS, MARK_STEPS, page="profiler", panel="step_breakdown")]
    return [Finding(
        "profile_steps", "compute", "info", None,
        {"steps": len(steps), "run": run.label, "inferred_from": steps.attrs["inferred_from"]},
        f"Steps inferred from {steps.attrs['inferred_from']}: the profile {run.label} has no "
        "step markers xprof counts (`keras.callbacks.TensorBoard(profile_batch=...)` writes "
        f"none), so insight took its {len(steps)} steps from the timeline and split each by "
        "what ran during it. Input: waiting for the next batch; Device compute: "
        "GPU/TPU kernels; Host compute: TensorFlow ops on the host; All others: the rest "
        "(Python, callbacks, dispatch, and in the first profiled step one-off costs such as "
        "Keras starting its graph trace).",
        MARK_STEPS + " xprof then gives its own breakdown.",
        page="profiler", panel="step_breakdown")]


@check("input_bound", "compute", needs=("profile",))
def input_bound(ev: Evidence) -> list[Finding]:
    """Steps that spend most of their time waiting for the next batch (input-bound)."""
    run, steps = ev.profile
    if steps.empty or "Input" not in steps:
        return []
    # The first profiled step carries one-off costs (tracing); judge the others when there are.
    body = steps.iloc[1:] if len(steps) > 2 else steps
    total = float(body["step_time_ms"].sum())
    waited = float(body["Input"].sum())
    if not total > 0 or waited / total <= INPUT_SHARE:
        return []
    share = waited / total
    return [Finding(
        "input_bound", "compute", "warning", None,
        {"input_share": share, "input_ms": waited / len(body),
         "step_ms": total / len(body), "steps": len(body), "run": run.label},
        f"Each step of the profile {run.label} spends {share:.0%} of its time "
        f"({waited / len(body):.3g} of {total / len(body):.3g} ms) waiting for the next batch: "
        "training is input-bound, and a faster model or device would not make it faster.",
        "Build the input pipeline with tf.data: `.cache()` after loading, "
        "`.map(..., num_parallel_calls=tf.data.AUTOTUNE)`, and `.prefetch(tf.data.AUTOTUNE)` "
        "last, so the next batch is ready while the step runs; move per-example Python out "
        "of the loop.",
        page="profiler", panel="step_breakdown")]


def _layer_classes(ev: Evidence) -> set[str]:
    return {type(layer).__name__ for _, layer in ev.layers}


@check("xla_slower", "compute", needs=("xla",))
def xla_slower(ev: Evidence) -> list[Finding]:
    """XLA makes the forward pass slower than `tf.function` on this machine."""
    times = ev.xla_times
    median = dict(zip(times["mode"], times["median_ms"].astype(float), strict=True))
    graph, xla = median.get("graph", np.nan), median.get("xla", np.nan)
    if not (np.isfinite(graph) and np.isfinite(xla) and graph > 0 and xla > graph * XLA_SLOWER):
        return []
    slow = sorted(SLOW_ON_CPU & _layer_classes(ev))
    return [Finding(
        "xla_slower", "compute", "info", None,
        {"xla_ms": xla, "graph_ms": graph, "ratio": xla / graph,
         **({"slow_layers": ", ".join(slow)} if slow else {})},
        f"XLA is {xla / graph:.1f}× slower than tf.function here. One batch takes "
        f"{xla:.3g} ms compiled against {graph:.3g} ms without XLA. Compiling does not speed "
        "up every model on every machine"
        + (f": this one has {' and '.join(slow)} layers, and on CPU XLA's depthwise "
           "convolutions run far slower than TensorFlow's own kernels." if slow else "."),
        "Keep `jit_compile=False` (or Keras' default `\"auto\"`) for this model on this "
        "device. A profile captured with XLA (Profiler page, or `insight profile MODEL --xla "
        "--logdir DIR`) shows which ops take the time.",
        page="compiler", panel="xla_step_time")]
