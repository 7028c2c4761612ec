"""`insight serve`: check the arguments, then run the app (`insight.ui.serve`).

Example:

>>> main(["serve", "model.keras", "--port", "8502"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from insight.cli.console import absolute, check_path
from insight.launch import LaunchOptions, add_model_args

__all__ = ["add_serve_parser", "run_serve", "is_loopback"]


def add_serve_parser(sub) -> None:
    """Add `insight serve` to the subcommands."""
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


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (`localhost`, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_serve(args: argparse.Namespace) -> int:
    """Serve the app until interrupted; returns Streamlit's exit status."""
    from insight.model.loading import check_safety
    from insight.model.preflight import preflight

    check_path("--data", args.data)
    check_path("--logdir", args.logdir)
    check_path("--custom-objects", args.custom_objects)
    if args.model:
        # Fail fast with one line, before the server starts (no TensorFlow needed).
        check_safety(preflight(args.model), safe_mode=not args.unsafe)
    model = str(Path(args.model).expanduser().resolve()) if args.model else None
    opts = LaunchOptions(model=model, data=absolute(args.data), logdir=absolute(args.logdir),
                         unsafe=args.unsafe, custom_objects=absolute(args.custom_objects))
    if not is_loopback(args.host):
        os.environ["INSIGHT_LOCKED"] = "1"
        print(f"insight: binding {args.host}: anyone who reaches this address can use the app "
              "(free-form model paths are disabled).", file=sys.stderr)
    print(f"insight: serving {model or 'the bundled samples'} at "
          f"http://{args.host}:{args.port}", flush=True)
    from insight.ui.serve import serve

    return serve(opts, host=args.host, port=args.port)
