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
    from insight.profiler.capture import get_profile, tool_data, xprof_command
    from insight.profiler.tables import framework_ops, overview_summary

    with quiet_native_stderr(not args.debug):
        r = get_profile(args.logdir, run)
        summary = overview_summary(tool_data(r, "overview_page"))
        ops = framework_ops(tool_data(r, "framework_op_stats"))
    print(f"profile: {r.hosts[0]}")
    if summary["no_step_markers"]:
        print(f"steps: none. {NO_STEPS}")
    else:
        print(f"steps: {summary['steps']}, mean {summary['step_ms_mean']:.2f} ms "
              f"(min {summary['step_ms_min']:.2f}, max {summary['step_ms_max']:.2f})")
    for _, o in ops.head(5).iterrows():
        print(f"  {o['self_time_percent']:5.1f}%  {o['self_time_us'] / 1e3:8.3f} ms  "
              f"{o['type']}  {o['op']}")
    print(f"open in XProf: {xprof_command(Path(args.logdir).expanduser().resolve())}")
    return 0


def _capture(args: argparse.Namespace) -> None:
    for flag, value in (("--steps", args.steps), ("--batch-size", args.batch_size)):
        if value < 1:
            raise UsageError(f"{flag} must be a positive integer.", "", f"{flag}={value}")
    # Memory events on CPU need the BFC allocator, chosen when TensorFlow starts.
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    from insight.data import dataset_for
    from insight.model.loading import check_safety, load_model
    from insight.model.preflight import preflight
    from insight.profiler.capture import capture_profile

    check_safety(preflight(args.model), safe_mode=not args.unsafe)
    with quiet_native_stderr(not args.debug):
        loaded = load_model(args.model, safe_mode=not args.unsafe,
                            custom_objects=args.custom_objects)
        dataset = dataset_for(loaded, args.data)
        capture_profile(loaded, dataset, args.logdir, steps=args.steps, train=args.train,
                        warmup=args.warmup, batch_size=args.batch_size, xla=args.xla)
