"""`insight xla`: print or save the HLO XLA builds for a model's forward pass or train step.

```
insight xla MODEL [--stage hlo|optimized_hlo] [--function forward|train] [--data PATH]
                  [--layer PATH] [--out FILE]
```

Without `--out` the HLO goes to stdout (pipe it into `grep` or `less`); with it, the file gets
the HLO and stdout one line saying what was written. A model XLA cannot compile exits with
status 2 and one `error:` line naming the op and its layer.

Example:

>>> main(["xla", "sample_models/digits_cnn/model.keras", "--out", "digits.hlo"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["add_xla_parser", "run_xla"]


def add_xla_parser(sub) -> None:
    """Add the `xla` subcommand to the CLI's subparsers."""
    from insight.compiler.xla import FUNCTIONS, STAGES
    from insight.launch import add_model_args

    p = sub.add_parser("xla", help="print or save the model's HLO, before or after XLA's "
                                   "optimisation")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--stage", choices=STAGES, default="optimized_hlo",
                   help="hlo: as TensorFlow built it; optimized_hlo: after XLA's passes "
                        "(default: optimized_hlo)")
    p.add_argument("--function", choices=FUNCTIONS, default="forward",
                   help="forward pass, or a train step (needs labels) (default: forward)")
    p.add_argument("--data", metavar="PATH",
                   help="inputs (default: the data beside the model, else synthetic)")
    p.add_argument("--layer", default="", metavar="PATH",
                   help="only this layer's instructions (e.g. conv1 or backbone/conv2)")
    p.add_argument("--out", metavar="FILE", help="write the HLO to FILE instead of stdout")
    add_model_args(p, companions=False)
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def run_xla(args: argparse.Namespace) -> int:
    """Compile, then print or write the HLO; returns the exit status."""
    from insight.cli.console import quiet_native_stderr
    from insight.compiler.xla import STAGE_TITLES
    from insight.errors import UsageError
    from insight.model.loading import load_model
    from insight.model.sandbox import LoadLimits
    from insight.panels.compiler import BATCH, FUNCTION_TITLES

    if args.out and not Path(args.out).expanduser().resolve().parent.is_dir():
        raise UsageError("The folder for --out does not exist.", "Create it first.",
                         f"--out={args.out!r}")
    limits = LoadLimits.parse(args.load_timeout, args.load_memory)
    with quiet_native_stderr(not args.debug):
        from insight.panels.compiler import compilation
        from insight.panels.registry import PanelContext

        loaded = load_model(args.model, safe_mode=not args.unsafe,  # a child checks it first
                            custom_objects=args.custom_objects, isolate=limits)
        data = Path(args.data) if args.data else None
        comp = compilation(PanelContext(loaded, data), args.function)
        text = comp.hlo_text(args.stage, args.layer)
    if not args.out:
        try:
            print(text, flush=True)
        except BrokenPipeError:  # `insight xla ... | head`: the reader has seen enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    out = Path(args.out).expanduser()
    out.write_text(text + "\n", encoding="utf-8")
    counts = comp.op_count_table()
    print(f"wrote {len(text.splitlines()):,} lines of HLO {STAGE_TITLES[args.stage]} "
          f"({FUNCTION_TITLES[args.function]}, batch of {min(comp.batch, BATCH)}"
          + (f", layer {args.layer}" if args.layer else "") + f") to {out}; "
          f"{int(counts['before'].sum()):,} instructions before optimisation, "
          f"{int(counts['after'].sum()):,} after, {len(comp.fusion_table())} fusions")
    return 0
