"""`insight summary`: the Overview's data (model card and layer table) on the terminal.

Example:

>>> main(["summary", "sample_models/digits_cnn/model.keras", "--json"])  # doctest: +SKIP
0
>>> main(["summary", "s3://models/digits/model.keras"])  # doctest: +SKIP
0

MODEL may be an `s3://` or `gs://` URL: it is fetched into insight's cache and checked and
loaded there as a local file (credentials from the standard places, never the URL).
"""

from __future__ import annotations

import argparse
import json

from insight.cli.console import quiet_native_stderr
from insight.launch import add_model_args

__all__ = ["add_summary_parser", "run_summary", "print_summary"]


def add_summary_parser(sub) -> None:
    """Add `insight summary` to the subcommands."""
    summary = sub.add_parser("summary", help="print the model card and layer table")
    summary.add_argument("model", metavar="MODEL",
                         help=".keras, .h5/.hdf5 or SavedModel directory, or its s3:// or "
                              "gs:// URL")
    summary.add_argument("--json", action="store_true", help="print JSON")
    add_model_args(summary, companions=False)
    summary.add_argument("--debug", action="store_true", help="show tracebacks")


def run_summary(args: argparse.Namespace) -> int:
    """Print the summary of `args.model`; returns the exit status."""
    from insight.model.loading import load_model
    from insight.model.sandbox import LoadLimits
    from insight.model.summary import model_summary

    limits = LoadLimits.parse(args.load_timeout, args.load_memory)
    with quiet_native_stderr(not args.debug):  # first loaded in a child with limits
        loaded = load_model(args.model, safe_mode=not args.unsafe,
                            custom_objects=args.custom_objects, isolate=limits)
        summary = model_summary(loaded)
    if loaded.source:  # fetched from a bucket: named by its URL, not the cache's copy
        summary["card"]["file"] = loaded.source
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print_summary(summary)
    return 0


def print_summary(summary: dict) -> None:
    """Print `insight.model_summary`'s dict as text."""
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
