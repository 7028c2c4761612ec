"""How the app learns which model, data and logdir to open.

`insight serve` and `streamlit run app.py -- MODEL [--data ...] [--logdir ...] [--compare ...]`
pass them as script arguments; containers and tests (where `sys.argv` is not the app's) use the
environment variables `INSIGHT_MODEL`, `INSIGHT_DATA`, `INSIGHT_LOGDIR`, `INSIGHT_COMPARE`,
`INSIGHT_UNSAFE`,
`INSIGHT_CUSTOM_OBJECTS`, the streamed data's `INSIGHT_FEATURES`, `INSIGHT_DATA_FN` and
`INSIGHT_MAX_EXAMPLES` (`insight.data.stream`), and the isolated loader's limits
`INSIGHT_LOAD_TIMEOUT` and `INSIGHT_LOAD_MEMORY`. Arguments win over the environment.
Trust flags (`--unsafe`, `--custom-objects`, `--data-fn`) come from the command line or the
environment only, never from a URL.

Example:

>>> opts = parse_app_args(["m.keras", "--logdir", "logs"], env={"INSIGHT_DATA": "x.npz"})
>>> opts.model, opts.data, opts.logdir, opts.unsafe
('m.keras', 'x.npz', 'logs', False)
>>> app_argv(opts)
['m.keras', '--data', 'x.npz', '--logdir', 'logs']
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["LaunchOptions", "add_model_args", "add_stream_args", "parse_app_args", "app_argv",
           "launched", "use_cache_dir", "CACHE_ENV"]

CACHE_ENV = "INSIGHT_CACHE_DIR"  # fetched files, converted profiles, results (all processes)

_ENV = {"model": "INSIGHT_MODEL", "data": "INSIGHT_DATA", "logdir": "INSIGHT_LOGDIR",
        "compare": "INSIGHT_COMPARE", "features": "INSIGHT_FEATURES", "data_fn": "INSIGHT_DATA_FN",
        "custom_objects": "INSIGHT_CUSTOM_OBJECTS", "load_timeout": "INSIGHT_LOAD_TIMEOUT",
        "load_memory": "INSIGHT_LOAD_MEMORY"}
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class LaunchOptions:
    """The model and companions the app was started with (all optional)."""

    model: str | None = None
    data: str | None = None
    logdir: str | None = None
    compare: str | None = None  # a second model file, or a folder of checkpoints
    unsafe: bool = False
    custom_objects: str | None = None
    locked: bool = False  # served beyond localhost: no free-form paths in the sidebar
    root: str | None = None  # `insight serve --root`: typed paths stay inside it (insight.paths)
    # Limits of the isolated loader (`insight.model.sandbox.LoadLimits.parse` reads the text:
    # seconds, and a size such as "8G"); None: the defaults.
    load_timeout: str | None = None
    load_memory: str | None = None
    # Data beyond memory (insight.data.stream): the shards' features spec, a trusted builder
    # file (executed: like custom_objects, never from a widget or a URL), a cap on examples.
    features: str | None = None
    data_fn: str | None = None
    max_examples: int | None = None


def add_model_args(parser: argparse.ArgumentParser, *, companions: bool = True,
                   stream: bool = False) -> None:
    """Add `--unsafe`, `--custom-objects` (and `--data`, `--logdir`; with `stream`, the
    streamed data's `--features`, `--data-fn`, `--max-examples`) to a parser."""
    if companions:
        parser.add_argument("--data", metavar="PATH",
                            help="inputs: .npz (x, y, class_names), .npy, .csv or image folder"
                                 + (", or TFRecord shards 'shards/*.tfrecord' (or s3://...) "
                                    "with --features" if stream else ""))
        parser.add_argument("--logdir", metavar="DIR",
                            help="TensorBoard logdir, CSVLogger csv or history json")
    if stream:
        add_stream_args(parser)
    parser.add_argument("--unsafe", action="store_true",
                        help="allow Lambda layers and SavedModels (runs code from the file; "
                             "only for files you trust)")
    parser.add_argument("--custom-objects", metavar="FILE",
                        help="a .py file defining the model's custom classes (it is executed)")
    parser.add_argument("--load-timeout", metavar="SECONDS",
                        help="stop the isolated first load of the model file after this many "
                             "seconds (default: 60; env INSIGHT_LOAD_TIMEOUT)")
    parser.add_argument("--load-memory", metavar="SIZE",
                        help="stop the isolated first load when it needs more memory than "
                             "this, e.g. 8G or 512M (default: 8G; env INSIGHT_LOAD_MEMORY)")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="insight's cache: files fetched from s3:// or gs://, converted "
                             "profiles, results, captures of a remote logdir (default: "
                             f"${CACHE_ENV}, else ~/.cache/insight)")


def add_stream_args(parser: argparse.ArgumentParser) -> None:
    """Add `--features`, `--data-fn` and `--max-examples` (data beyond memory) to a parser."""
    parser.add_argument("--features", metavar="SPEC.json",
                        help="the features spec of TFRecord shards given as --data "
                             "'shards/*.tfrecord' (or s3://...): names, dtypes, shapes, which "
                             "are inputs and labels")
    parser.add_argument("--data-fn", metavar="FILE.py",
                        help="a .py file defining dataset() -> tf.data.Dataset, streamed "
                             "instead of --data (it is executed: only files you trust)")
    parser.add_argument("--max-examples", metavar="N", type=_positive,
                        help="stream at most N examples of --data shards or --data-fn")


def use_cache_dir(folder: str | None) -> str | None:
    """Make `folder` insight's cache for this process and every process it starts (the
    served app, the isolated loader, captures): it sets `$INSIGHT_CACHE_DIR`. `None`: the
    environment's, unchanged. Returns the folder used, absolute (created if missing).

    Raises:
        UsageError: the folder cannot be created or written.

    Example:

    >>> use_cache_dir("/mnt/shared/insight-cache")  # doctest: +SKIP
    '/mnt/shared/insight-cache'
    """
    from pathlib import Path

    from insight.errors import UsageError

    if not folder:
        return None
    path = Path(folder).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"The cache folder cannot be created ({exc.strerror}).",
                         "Give --cache-dir a folder you can write.",
                         f"--cache-dir {folder!r}") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError("The cache folder cannot be written.",
                         "Give --cache-dir a folder you can write.", f"--cache-dir {folder!r}")
    os.environ[CACHE_ENV] = str(path)
    return str(path)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer. Received: {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="app.py", add_help=False)
    parser.add_argument("model", nargs="?")
    add_model_args(parser, stream=True)
    parser.add_argument("--compare")
    return parser


def parse_app_args(argv: Sequence[str] | None, env: Mapping[str, str] | None = None
                   ) -> LaunchOptions:
    """Combine script arguments (`argv`, without the script name) with the environment.

    Unknown arguments are ignored, so a stray flag never stops the app from starting.
    """
    env = os.environ if env is None else env
    ns, _ = _parser().parse_known_args(list(argv or []))
    values = {key: getattr(ns, key) or env.get(var) or None for key, var in _ENV.items()}
    cap = ns.max_examples or env.get("INSIGHT_MAX_EXAMPLES") or None
    values["max_examples"] = int(cap) if cap is not None and str(cap).isdigit() and \
        int(cap) > 0 else None
    unsafe = bool(ns.unsafe) or env.get("INSIGHT_UNSAFE", "").lower() in _TRUE
    locked = env.get("INSIGHT_LOCKED", "").lower() in _TRUE
    root = env.get("INSIGHT_ROOT") or None  # set by `insight serve --root`, never by a URL
    return LaunchOptions(unsafe=unsafe, locked=locked, root=root, **values)


def app_argv(opts: LaunchOptions) -> list[str]:
    """The script arguments that reproduce `opts` (what `insight serve` passes after `--`)."""
    out = [opts.model] if opts.model else []
    for flag, value in (("--data", opts.data), ("--logdir", opts.logdir),
                        ("--compare", opts.compare), ("--features", opts.features),
                        ("--data-fn", opts.data_fn),
                        ("--max-examples", str(opts.max_examples) if opts.max_examples else None),
                        ("--custom-objects", opts.custom_objects),
                        ("--load-timeout", opts.load_timeout),
                        ("--load-memory", opts.load_memory)):
        if value:
            out += [flag, value]
    if opts.unsafe:
        out.append("--unsafe")
    return out


def launched() -> LaunchOptions | None:
    """The options of the app running in this process (its script arguments, else the
    environment), or `None` outside the app (the CLI passes its own arguments instead).

    The app is running when `sys.argv[0]` is its entry script (`insight serve` sets it) or
    a checkout's `app.py` beside this package.
    """
    import sys
    from pathlib import Path

    if not sys.argv or not sys.argv[0]:
        return None
    here = Path(__file__).resolve().parent
    script = Path(sys.argv[0]).resolve()
    if script != here / "ui" / "entry.py" and script != here.parent / "app.py":
        return None
    return parse_app_args(sys.argv[1:])
