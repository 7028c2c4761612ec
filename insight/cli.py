"""The `insight` command line.

```
insight serve [MODEL] [--data PATH] [--logdir DIR] [--host 127.0.0.1] [--port 8501]
insight summary MODEL [--json]
insight stats MODEL [--data PATH] [--json]
insight profile [MODEL] --logdir DIR [--data PATH] [--steps N] [--train] [--xla]
insight export MODEL --panel NAME [--param K=V ...] --out FILE.html|.png|.svg
insight export MODEL --all-panels --out DIR
insight snapshot MODEL --baseline-dir DIR [--panels SPEC ...] [--update]
insight xla MODEL [--stage hlo|optimized_hlo] [--function forward|train] [--out FILE]
insight --version
```

Every command that loads a model takes `--unsafe` and `--custom-objects FILE`. Errors print
one line, `error: <message>`, and exit with status 2; `--debug` shows the traceback.

Example:

>>> main(["summary", "sample_models/digits_cnn/model.keras", "--json"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from insight._version import __version__
from insight.errors import InsightError, UsageError
from insight.launch import LaunchOptions, add_model_args

__all__ = ["main", "build_parser"]

def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `insight`."""
    parser = argparse.ArgumentParser(
        prog="insight", description="See what a Keras model does inside.")
    parser.add_argument("--version", action="version", version=f"insight {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="open the dashboard (default model: bundled sample)")
    serve.add_argument("model", nargs="?", metavar="MODEL",
                       help=".keras, .h5/.hdf5 or SavedModel directory (default: the "
                            "digits_cnn sample)")
    add_model_args(serve)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind; anything but localhost exposes the app "
                            "(default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8501, help="port (default: 8501)")
    serve.add_argument("--debug", action="store_true", help="show tracebacks")

    stats = sub.add_parser("stats", help="per-layer activation statistics and gradient norms")
    stats.add_argument("model", metavar="MODEL")
    stats.add_argument("--data", metavar="PATH",
                       help="inputs (.npz, .npy, .csv, image folder); default: the data beside "
                            "the model, else synthetic inputs")
    stats.add_argument("--batch-size", type=int, default=64, help="rows per pass (default: 64)")
    stats.add_argument("--json", action="store_true", help="print JSON")
    add_model_args(stats, companions=False)
    stats.add_argument("--debug", action="store_true", help="show tracebacks")

    from insight.profile_cli import add_profile_parser

    add_profile_parser(sub)

    from insight.export_cli import add_export_parsers

    add_export_parsers(sub)

    from insight.xla_cli import add_xla_parser

    add_xla_parser(sub)

    summary = sub.add_parser("summary", help="print the model card and layer table")
    summary.add_argument("model", metavar="MODEL")
    summary.add_argument("--json", action="store_true", help="print JSON")
    add_model_args(summary, companions=False)
    summary.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no C++ chatter about absent GPUs
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handler = {"serve": _serve, "summary": _summary, "stats": _stats,
               "profile": _profile, "export": _export, "snapshot": _snapshot,
               "xla": _xla}[args.command]
    try:
        return handler(args)
    except InsightError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


@contextmanager
def _quiet_native_stderr(enabled: bool):
    """Silence what TensorFlow's C++ runtime writes to fd 2 while it starts (CUDA probing,
    absl banners); Python exceptions are unaffected. `--debug` keeps it."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _summary(args: argparse.Namespace) -> int:
    from insight.inspection import preflight
    from insight.loading import check_safety, load_model
    from insight.summary import model_summary

    check_safety(preflight(args.model), safe_mode=not args.unsafe)  # before TensorFlow starts
    with _quiet_native_stderr(not args.debug):
        loaded = load_model(args.model, safe_mode=not args.unsafe,
                            custom_objects=args.custom_objects)
        summary = model_summary(loaded)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    _print_summary(summary)
    return 0


def _stats(args: argparse.Namespace) -> int:
    import pandas as pd

    from insight.data import dataset_for
    from insight.inspection import preflight
    from insight.layer_report import layer_report, report_records
    from insight.loading import check_safety, load_model

    check_safety(preflight(args.model), safe_mode=not args.unsafe)
    with _quiet_native_stderr(not args.debug):
        loaded = load_model(args.model, safe_mode=not args.unsafe,
                            custom_objects=args.custom_objects)
        dataset = dataset_for(loaded, args.data)
        table = layer_report(loaded, dataset, batch_size=args.batch_size)
    if args.json:
        print(json.dumps(report_records(table), indent=2))
        return 0
    print(f"{dataset.describe()}")
    for name, count in dataset.nonfinite.items():
        print(f"warning: input {name!r} holds {count:,} NaN/Inf values")
    print(f"gradients: {table.attrs['target']}, first {min(64, len(dataset))} rows")
    cols = ["layer", "class", "mean", "std", "dead_fraction", "saturated_fraction", "grad_norm"]
    shown = table[cols].copy()
    for c in cols[2:]:
        shown[c] = shown[c].map(lambda v: "-" if pd.isna(v) else f"{v:.4g}")
    print(shown.to_string(index=False))
    return 0


def _print_summary(summary: dict) -> None:
    card = summary["card"]
    print(f"{card['name']}  [{card['format']}, {card['model_class']} ({card['kind']}), "
          f"saved with Keras {card['keras_version']}]")
    print(f"file: {card['file']}")
    for key in ("inputs", "outputs"):
        for spec in card[key]:
            print(f"{key[:-1]:>6}: {spec['name']} {spec['shape']} {spec['dtype']}")
    print(f"params: {card['total_params']:,} total, {card['trainable_params']:,} trainable, "
          f"{card['non_trainable_params']:,} non-trainable; {card['layer_count']} layers")
    rows = [("layer", "class", "output shape", "params", "activation")] + [
        (r["layer"], r["class"], r["output_shape"], f"{r['params']:,}", r["activation"])
        for r in summary["layers"]]
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    for n, row in enumerate(rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for line in card["findings"]:
        print(f"- {line}")
    for what, why in card["limits"].items():
        print(f"- no {what}: {why}")


def _profile(args: argparse.Namespace) -> int:
    from insight.profile_cli import run_profile

    return run_profile(args, _quiet_native_stderr)


def _export(args: argparse.Namespace) -> int:
    from insight.export_cli import run_export

    return run_export(args, _quiet_native_stderr)


def _snapshot(args: argparse.Namespace) -> int:
    from insight.export_cli import run_snapshot

    return run_snapshot(args, _quiet_native_stderr)


def _xla(args: argparse.Namespace) -> int:
    from insight.xla_cli import run_xla

    return run_xla(args, _quiet_native_stderr)


def _check_path(flag: str, value: str | None) -> None:
    if value and not Path(value).expanduser().exists():
        raise UsageError(f"The {flag} path does not exist.", "Check the path.",
                         f"{flag}={value!r}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(args: argparse.Namespace) -> int:
    from insight.inspection import preflight
    from insight.loading import check_safety

    _check_path("--data", args.data)
    _check_path("--logdir", args.logdir)
    _check_path("--custom-objects", args.custom_objects)
    if args.model:
        # Fail fast with one line, before the server starts (no TensorFlow needed).
        check_safety(preflight(args.model), safe_mode=not args.unsafe)
    model = str(Path(args.model).expanduser().resolve()) if args.model else None
    opts = LaunchOptions(model=model, data=_abs(args.data), logdir=_abs(args.logdir),
                         unsafe=args.unsafe, custom_objects=_abs(args.custom_objects))
    if not _is_loopback(args.host):
        os.environ["INSIGHT_LOCKED"] = "1"
        print(f"insight: binding {args.host}: anyone who reaches this address can use the app "
              "(free-form model paths are disabled).", file=sys.stderr)
    print(f"insight: serving {model or 'the bundled samples'} at "
          f"http://{args.host}:{args.port}", flush=True)
    from insight.ui.serve import serve

    return serve(opts, host=args.host, port=args.port)


def _abs(value: str | None) -> str | None:
    return str(Path(value).expanduser().resolve()) if value else None


if __name__ == "__main__":
    sys.exit(main())
