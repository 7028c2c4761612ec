"""The `insight` command line.

```
insight serve [MODEL] [--data PATH] [--features SPEC.json] [--data-fn FILE.py]
              [--max-examples N] [--logdir DIR] [--host 127.0.0.1] [--port 8501]
insight summary MODEL [--json]
insight doctor MODEL [--data PATH | --data 'shards/*.tfrecord' --features SPEC.json |
              --data-fn FILE.py] [--max-examples N] [--logdir DIR] [--train-probe] [--json]
              [--fail-on LEVEL]
insight stats MODEL [--data PATH | --data 'shards/*.tfrecord' --features SPEC.json |
              --data-fn FILE.py] [--max-examples N] [--json]
insight profile [MODEL] --logdir DIR|s3://... [--data PATH] [--steps N] [--train] [--xla]
insight export MODEL --panel NAME [--param K=V ...] --out FILE.html|.png|.svg
insight export MODEL --all-panels --out DIR
insight snapshot MODEL --baseline-dir DIR [--panels SPEC ...] [--update]
insight xla MODEL [--stage hlo|optimized_hlo] [--function forward|train] [--out FILE]
insight compare A B [--data PATH] [--json] [--out report.html]   (A: or a checkpoint folder)
insight --version
```

Every command that loads a model takes `--unsafe`, `--custom-objects FILE` and `--cache-dir DIR`
(insight's cache for this run and the processes it starts: `$INSIGHT_CACHE_DIR`). Errors print
one line, `error: <message>`, and exit with status 2; `--debug` shows the traceback.
`insight doctor` exits 1 when a finding reaches `--fail-on` (default `error`).

Example:

>>> main(["summary", "sample_models/digits_cnn/model.keras", "--json"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from insight._version import __version__
from insight.cli.compare import add_compare_parser
from insight.cli.doctor import add_doctor_parser
from insight.cli.export import add_export_parsers
from insight.cli.profile import add_profile_parser
from insight.cli.serve import add_serve_parser
from insight.cli.stats import add_stats_parser
from insight.cli.summary import add_summary_parser
from insight.cli.xla import add_xla_parser
from insight.errors import InsightError
from insight.launch import use_cache_dir

__all__ = ["main", "build_parser"]

# command -> (module, function): each module holds one subcommand's parser and its run
COMMANDS = {
    "serve": ("insight.cli.serve", "run_serve"),
    "summary": ("insight.cli.summary", "run_summary"),
    "doctor": ("insight.cli.doctor", "run_doctor"),
    "stats": ("insight.cli.stats", "run_stats"),
    "profile": ("insight.cli.profile", "run_profile"),
    "export": ("insight.cli.export", "run_export"),
    "snapshot": ("insight.cli.export", "run_snapshot"),
    "xla": ("insight.cli.xla", "run_xla"),
    "compare": ("insight.cli.compare", "run_compare"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `insight`."""
    parser = argparse.ArgumentParser(
        prog="insight", description="See what a Keras model does inside.")
    parser.add_argument("--version", action="version", version=f"insight {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_serve_parser(sub)
    add_stats_parser(sub)
    add_profile_parser(sub)
    add_export_parsers(sub)
    add_xla_parser(sub)
    add_summary_parser(sub)
    add_doctor_parser(sub)
    add_compare_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 a failed check: `doctor`, `snapshot`;
    2 bad input)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no C++ chatter about absent GPUs
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module, function = COMMANDS[args.command]
    handler = getattr(importlib.import_module(module), function)
    try:
        use_cache_dir(getattr(args, "cache_dir", None))  # before anything reads the cache
        return handler(args)
    except InsightError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
