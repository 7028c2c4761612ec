"""`insight stats`: per-layer activation statistics and gradient norms on the terminal.

Example:

>>> main(["stats", "sample_models/digits_cnn/model.keras", "--json"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import json

from insight.cli.console import quiet_native_stderr
from insight.launch import add_model_args

__all__ = ["add_stats_parser", "run_stats"]


def add_stats_parser(sub) -> None:
    """Add `insight stats` to the subcommands."""
    stats = sub.add_parser("stats", help="per-layer activation statistics and gradient norms")
    stats.add_argument("model", metavar="MODEL")
    stats.add_argument("--data", metavar="PATH",
                       help="inputs (.npz, .npy, .csv, image folder); default: the data beside "
                            "the model, else synthetic inputs")
    stats.add_argument("--batch-size", type=int, default=64, help="rows per pass (default: 64)")
    stats.add_argument("--json", action="store_true", help="print JSON")
    add_model_args(stats, companions=False)
    stats.add_argument("--debug", action="store_true", help="show tracebacks")


def run_stats(args: argparse.Namespace) -> int:
    """Print the layer report of `args.model` over its data; returns the exit status."""
    import pandas as pd

    from insight.data import dataset_for
    from insight.model.loading import load_model
    from insight.model.sandbox import LoadLimits
    from insight.probe.report import layer_report, report_records

    limits = LoadLimits.parse(args.load_timeout, args.load_memory)
    with quiet_native_stderr(not args.debug):  # first loaded in a child with limits
        loaded = load_model(args.model, safe_mode=not args.unsafe,
                            custom_objects=args.custom_objects, isolate=limits)
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
