"""`insight stats`: per-layer activation statistics and gradient norms on the terminal.

Example:

>>> main(["stats", "sample_models/digits_cnn/model.keras", "--json"])  # doctest: +SKIP
0
>>> main(["stats", "model.keras", "--data", "shards/*.tfrecord", "--features",
...       "shards/features.json", "--max-examples", "2048"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import json

from insight.cli.console import check_data, quiet_native_stderr
from insight.launch import add_model_args, add_stream_args

__all__ = ["add_stats_parser", "run_stats", "terminal_progress", "GRADIENT_ROWS"]

GRADIENT_ROWS = 64  # rows of the one batch the gradient norms are computed on


def add_stats_parser(sub) -> None:
    """Add `insight stats` to the subcommands."""
    stats = sub.add_parser("stats", help="per-layer activation statistics and gradient norms")
    stats.add_argument("model", metavar="MODEL")
    stats.add_argument("--data", metavar="PATH",
                       help="inputs (.npz, .npy, .csv, image folder, or TFRecord shards "
                            "'shards/*.tfrecord' / s3://... with --features); default: the "
                            "data beside the model, else synthetic inputs")
    add_stream_args(stats)
    stats.add_argument("--batch-size", type=int, default=64, help="rows per pass (default: 64)")
    stats.add_argument("--json", action="store_true", help="print JSON")
    add_model_args(stats, companions=False)
    stats.add_argument("--debug", action="store_true", help="show tracebacks")


def terminal_progress():
    """A `progress(fraction, message)` that redraws one line on stderr when it is a
    terminal (nothing otherwise); `progress(1.0, "")` ends the line."""
    import sys

    if not sys.stderr.isatty():
        return lambda fraction, message: None

    def show(fraction: float, message: str) -> None:
        if not message:
            print(file=sys.stderr, flush=True)
            return
        done = int(fraction * 30)
        bar = f"[{'#' * done}{'.' * (30 - done)}] " if fraction > 0 else ""
        print(f"\r{bar}{message}", end="", file=sys.stderr, flush=True)

    return show


def run_stats(args: argparse.Namespace) -> int:
    """Print the layer report of `args.model` over its data; returns the exit status."""
    import pandas as pd

    from insight.data import dataset_for
    from insight.model.loading import load_model
    from insight.model.sandbox import LoadLimits
    from insight.probe.report import layer_report, report_records

    limits = LoadLimits.parse(args.load_timeout, args.load_memory)
    # shards listed and their spec read now: a glob matching nothing is one line, before
    # the model loads
    data, features, data_fn = check_data(args.data, args.features, args.data_fn)
    with quiet_native_stderr(not args.debug):  # first loaded in a child with limits
        loaded = load_model(args.model, safe_mode=not args.unsafe,
                            custom_objects=args.custom_objects, isolate=limits)
        # a stream keeps only the gradient batch in memory: the statistics read the stream
        dataset = dataset_for(loaded, data, features=features,
                              data_fn=data_fn, max_examples=args.max_examples,
                              head_rows=GRADIENT_ROWS)
        bar = terminal_progress() if dataset.stream is not None else None
        table = layer_report(loaded, dataset, batch_size=args.batch_size,
                             gradient_rows=GRADIENT_ROWS, max_examples=args.max_examples,
                             progress=bar)
        if bar is not None:
            bar(1.0, "")
    if args.json:
        print(json.dumps(report_records(table), indent=2))
        return 0
    print(f"{dataset.describe()}")
    if dataset.stream is not None:
        print(f"statistics over {table.attrs['rows']:,} streamed examples")
    for name, count in dataset.nonfinite.items():
        print(f"warning: input {name!r} holds {count:,} NaN/Inf values")
    print(f"gradients: {table.attrs['target']}, first {min(GRADIENT_ROWS, len(dataset))} rows")
    cols = ["layer", "class", "mean", "std", "dead_fraction", "saturated_fraction", "grad_norm"]
    shown = table[cols].copy()
    for c in cols[2:]:
        shown[c] = shown[c].map(lambda v: "-" if pd.isna(v) else f"{v:.4g}")
    print(shown.to_string(index=False))
    return 0
