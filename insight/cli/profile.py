"""`insight profile`: capture a profile of a model with step markers, or summarise one.

```
insight profile MODEL --logdir DIR [--data PATH] [--steps 5] [--train] [--xla]
insight profile MODEL --logdir DIR --data 'shards/*.tfrecord' --features spec.json
insight profile --logdir DIR [--run RUN]        # summarise an existing profile
```

Streamed data (TFRecord shards with `--features`, or `--data-fn`) is checked before the model
loads, as `insight stats` checks it; the profiled steps read the stream's first rows (as many
as the warm-up and profiled steps take, at most `--max-examples`).

`--logdir` may be an `s3://`/`gs://` URL. insight never writes to a bucket: a capture then goes
to `$INSIGHT_CACHE_DIR/profiles/<model>` (the folder the app's Capture button uses for that
model, so its Profiler page lists it as "captured here"), and the command says so. Without a
MODEL, the URL's newest run (or `--run`) is read: only its `.xplane.pb` files are fetched into
insight's cache. A missing bucket, refused credentials or a dropped connection exit 2 with one
line.

Example:

>>> main(["profile", "model.keras", "--logdir", "/tmp/p"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from insight.cli.console import check_data, quiet_native_stderr
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
                   help="writes DIR/plugins/profile/<run>/<host>.xplane.pb; an s3:// or "
                        "gs:// logdir is only read: a capture goes to insight's cache "
                        "(profiles/<model>)")
    p.add_argument("--data", metavar="PATH",
                   help="inputs: .npz, .npy, .csv, an image folder, or TFRecord shards "
                        "'shards/*.tfrecord' (or s3://...) with --features (default: the "
                        "data beside the model, else synthetic)")
    p.add_argument("--steps", type=int, default=5, help="profiled steps (default: 5)")
    p.add_argument("--warmup", type=int, default=2, help="unprofiled steps first (default: 2)")
    p.add_argument("--batch-size", type=int, default=32, help="examples per step (default: 32)")
    p.add_argument("--train", action="store_true",
                   help="training steps on a copy of the model (needs labels)")
    p.add_argument("--xla", action="store_true", help="compile the step with XLA")
    p.add_argument("--run", default="", help="with no MODEL: the run to summarise")
    add_model_args(p, companions=False, stream=True)
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def run_profile(args: argparse.Namespace) -> int:
    """Capture (with a MODEL) then summarise the profile; returns the exit status."""
    from insight.panels.profiler import NO_STEPS
    from insight.profiler.breakdown import profile_steps
    from insight.profiler.capture import get_profile, profile_trace, tool_data, xprof_command
    from insight.profiler.tables import framework_ops, overview_summary
    from insight.remote import check_url, is_remote

    remote = check_url(args.logdir) if is_remote(args.logdir) else None
    if args.model:
        logdir, r = _capture(args, remote)
        if remote:
            print(f"insight never writes to a bucket: {remote} is unchanged; the profile was "
                  f"written to {r.folder} (the app's Profiler lists it for this model)")
    elif remote:
        from insight.profiler.fetched import fetch_profile

        logdir = fetch_profile(remote, args.run)  # that run's .xplane.pb files, nothing else
        r = get_profile(logdir, args.run)
    else:
        logdir = Path(args.logdir).expanduser().resolve()
        r = get_profile(logdir, args.run)
    with quiet_native_stderr(not args.debug):
        overview = tool_data(r, "overview_page")
        summary = overview_summary(overview)
        steps = profile_steps(overview, lambda: profile_trace(r))
        ops = framework_ops(tool_data(r, "framework_op_stats"))
    fetched = remote is not None and not args.model
    print(f"profile: {_shown(r.hosts[0], logdir, remote) if fetched else r.hosts[0]}")
    _print_steps(steps, summary, NO_STEPS)
    if len(ops):
        print(f"top {min(TOP, len(ops))} of {len(ops)} TensorFlow ops by self time:")
    for _, o in ops.head(TOP).iterrows():
        print(f"  {o['self_time_percent']:5.1f}%  {o['self_time_us'] / 1e3:8.3f} ms  "
              f"{o['type']}  {o['op']}")
    print(f"open in XProf: {xprof_command(logdir)}")
    return 0


def _shown(host: Path, view: Path, url: str) -> str:
    """A fetched profile file named by its URL, not by insight's cache."""
    try:
        return f"{url}/{host.relative_to(view).as_posix()}"
    except ValueError:
        return str(host)


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


def _capture(args: argparse.Namespace, remote: str | None):
    """Capture into `--logdir`, or into insight's cache for a remote one; `(folder, run)`."""
    for flag, value in (("--steps", args.steps), ("--batch-size", args.batch_size)):
        if value < 1:
            raise UsageError(f"{flag} must be a positive integer.", "", f"{flag}={value}")
    # Memory events on CPU need the BFC allocator, chosen when TensorFlow starts.
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    from insight.data import dataset_for
    from insight.data.conform import HEAD_ROWS
    from insight.model.loading import load_model
    from insight.model.sandbox import LoadLimits
    from insight.profiler.capture import capture_name, capture_profile, writable_logdir

    limits = LoadLimits.parse(args.load_timeout, args.load_memory)
    # shards listed and their spec read before the model loads (what stats and doctor check)
    data, features, data_fn = check_data(args.data, args.features, args.data_fn)
    # what the steps read of a stream (they cycle over the rows in memory)
    rows = min(max((args.warmup + args.steps) * args.batch_size, 1), HEAD_ROWS)
    with quiet_native_stderr(not args.debug):
        loaded = load_model(args.model, safe_mode=not args.unsafe,  # a child checks it first
                            custom_objects=args.custom_objects, isolate=limits)
        dataset = dataset_for(loaded, data, features=features, data_fn=data_fn,
                              max_examples=args.max_examples, head_rows=rows)
        # as the app's Capture button: a bucket is never written, the cache's folder is
        folder = writable_logdir(remote, capture_name(args.model)) if remote else \
            Path(args.logdir).expanduser().resolve()
        run = capture_profile(loaded, dataset, folder, steps=args.steps, train=args.train,
                              warmup=args.warmup, batch_size=args.batch_size, xla=args.xla)
    return folder, run
