"""`insight profile`: capture a profile of a model with step markers, or summarise one.

```
insight profile MODEL --logdir DIR [--data PATH] [--steps 5] [--train] [--xla]
insight profile --logdir DIR [--run RUN]        # summarise an existing profile
```

Example:

>>> main(["profile", "model.keras", "--logdir", "/tmp/p"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from insight.cli.console import quiet_native_stderr
from insight.errors import UsageError

__all__ = ["add_profile_parser", "run_profile"]

TOP = 5  # ops listed in the summary


def add_profile_parser(sub) -> None:
    """Add the `profile` subcommand to the CLI's subparsers."""
    from insight.launch import add_model_args

    p = sub.add_parser("profile", help="capture a profile (TensorBoard/XProf layout) or "
                                       "summarise one")
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="the model to profile; without it, summarise the newest profile "
                        "under --logdir")
    p.add_argument("--logdir", metavar="DIR", required=True,
                   help="writes DIR/plugins/profile/<run>/<host>.xplane.pb")
    p.add_argument("--data", metavar="PATH",
                   help="inputs (default: the data beside the model, else synthetic)")
    p.add_argument("--steps", type=int, default=5, help="profiled steps (default: 5)")
    p.add_argument("--warmup", type=int, default=2, help="unprofiled steps first (default: 2)")
    p.add_argument("--batch-size", type=int, default=32, help="examples per step (default: 32)")
    p.add_argument("--train", action="store_true",
                   help="training steps on a copy of the model (needs labels)")
    p.add_argument("--xla", action="store_true", help="compile the step with XLA")
    p.add_argument("--run", default="", help="with no MODEL: the run to summarise")
    add_model_args(p, companions=False)
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def run_profile(args: argparse.Namespace) -> int:
    """Capture (with a MODEL) then summarise the profile; returns the exit status."""
    if args.model:
        _capture(args)
        run = ""
    else:
        run = args.run
    from insight.panels.profiler import NO_STEPS
    from insight.profiler.breakdown import profile_steps
    from insight.profiler.capture import get_profile, profile_trace, tool_data, xprof_command
    from insight.profiler.tables import framework_ops, overview_summary

    with quiet_native_stderr(not args.debug):
        r = get_profile(args.logdir, run)
        overview = tool_data(r, "overview_page")
        summary = overview_summary(overview)
        steps = profile_steps(overview, lambda: profile_trace(r))
        ops = framework_ops(tool_data(r, "framework_op_stats"))
    print(f"profile: {r.hosts[0]}")
    _print_steps(steps, summary, NO_STEPS)
    if len(ops):
        print(f"top {min(TOP, len(ops))} of {len(ops)} TensorFlow ops by self time:")
    for _, o in ops.head(TOP).iterrows():
        print(f"  {o['self_time_percent']:5.1f}%  {o['self_time_us'] / 1e3:8.3f} ms  "
              f"{o['type']}  {o['op']}")
    print(f"open in XProf: {xprof_command(Path(args.logdir).expanduser().resolve())}")
    return 0


def _print_steps(steps, summary: dict, no_steps: str) -> None:
    """The steps line (xprof's numbers, or the inferred steps') and the mean step's split."""
    if steps.empty:
        print(f"steps: none. {no_steps}")
        return
    if steps.attrs.get("source") == "inferred":
        t = steps["step_time_ms"]
        print(f"steps: {len(steps)} inferred from {steps.attrs['inferred_from']} (xprof found "
              f"no step markers), mean {t.mean():.2f} ms (min {t.min():.2f}, "
              f"max {t.max():.2f})")
    else:
        print(f"steps: {summary['steps']}, mean {summary['step_ms_mean']:.2f} ms "
              f"(min {summary['step_ms_min']:.2f}, max {summary['step_ms_max']:.2f})")
    means = steps.drop(columns=["step", "step_time_ms"]).astype(float).mean()
    parts = [f"{cat} {ms:.2f} ms" for cat, ms in means.items() if ms > 0]
    if parts:
        print(f"mean step: {' · '.join(parts)}")


def _capture(args: argparse.Namespace) -> None:
    for flag, value in (("--steps", args.steps), ("--batch-size", args.batch_size)):
        if value < 1:
            raise UsageError(f"{flag} must be a positive integer.", "", f"{flag}={value}")
    # Memory events on CPU need the BFC allocator, chosen when TensorFlow starts.
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    from insight.data import dataset_for
    from insight.model.loading import load_model
    from insight.model.sandbox import LoadLimits
    from insight.profiler.capture import capture_profile

    limits = LoadLimits.parse(args.load_timeout, args.load_memory)
    with quiet_native_stderr(not args.debug):
        loaded = load_model(args.model, safe_mode=not args.unsafe,  # a child checks it first
                            custom_objects=args.custom_objects, isolate=limits)
        dataset = dataset_for(loaded, args.data)
        capture_profile(loaded, dataset, args.logdir, steps=args.steps, train=args.train,
                        warmup=args.warmup, batch_size=args.batch_size, xla=args.xla)
