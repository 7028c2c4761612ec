"""`insight serve`: check the arguments, then run the app (`insight.ui.serve`).

Example:

>>> main(["serve", "model.keras", "--port", "8502"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from pathlib import Path

from insight.cli.console import absolute, check_data, check_given, check_path
from insight.errors import InsightError, UsageError
from insight.launch import LaunchOptions, add_model_args
from insight.remote import is_remote
from insight.serving import TOKEN_ENV, allowed_hosts, is_loopback, new_token

__all__ = ["add_serve_parser", "run_serve", "is_loopback", "check_port", "resolve_token"]


def add_serve_parser(sub) -> None:
    """Add `insight serve` to the subcommands."""
    serve = sub.add_parser("serve", help="open the dashboard (default model: bundled sample)")
    serve.add_argument("model", nargs="?", metavar="MODEL",
                       help=".keras, .h5/.hdf5 or SavedModel directory, or its s3:// or gs:// "
                            "URL (fetched into insight's cache; default: the digits_cnn "
                            "sample)")
    add_model_args(serve, stream=True)
    serve.add_argument("--compare", metavar="PATH",
                       help="a second model to compare MODEL with (the Compare page), or a "
                            "folder of its checkpoints")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind; anything but localhost exposes the app "
                            "(default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8501, help="port (default: 8501)")
    serve.add_argument("--debug", action="store_true", help="show tracebacks")
    serve.add_argument("--token", metavar="TOKEN",
                       help=f"the token visitors must give (default: ${TOKEN_ENV}, else one is "
                            "generated beyond localhost and printed in the URL); prefer "
                            f"${TOKEN_ENV}: arguments are visible to other users in `ps`")
    serve.add_argument("--no-token", action="store_true",
                       help="serve beyond localhost without a token (anyone who reaches the "
                            "address can use the app)")
    serve.add_argument("--allow-host", metavar="NAME", action="append", default=[],
                       help="a host name the server answers besides localhost and --host "
                            "(a reverse proxy's); repeatable")
    serve.add_argument("--root", metavar="DIR",
                       help="the folder whose files visitors may type paths to (model, data, "
                            "logdir, vectors); beyond localhost without it, typed paths are off")


def resolve_token(args: argparse.Namespace, env: dict[str, str] | None = None
                  ) -> tuple[str | None, bool]:
    """The token to require and whether it was generated here (then it is printed).

    `--token`, else `$INSIGHT_TOKEN`, else beyond localhost a fresh one; none on localhost
    unless given, none with `--no-token`.

    Raises:
        UsageError: `--no-token` with a token, or an empty token.
    """
    env = os.environ if env is None else env
    # An empty $INSIGHT_TOKEN counts as unset (compose files often declare it empty).
    given = args.token if args.token is not None else (env.get(TOKEN_ENV) or None)
    if args.no_token:
        if given:
            raise UsageError("--no-token and a token were both given.",
                             f"Drop --no-token, or --token/${TOKEN_ENV}.", "--no-token")
        return None, False
    if given is not None:
        if not given.strip():
            raise UsageError("The token is empty.", f"Give --token or ${TOKEN_ENV} a value, or "
                             "leave both out to have one generated.", "token=''")
        return given, False
    if is_loopback(args.host):
        return None, False
    return new_token(), True


def check_port(host: str, port: int) -> None:
    """Fail now, with the option to change, when the server could not listen on `host:port`.

    Binds (and closes) a socket on every address `host` resolves to, as Streamlit's server
    (tornado) will: with `SO_REUSEADDR`, so a port left in TIME_WAIT by a server that just
    stopped is free, and skipping an IPv6 `localhost` on a machine without IPv6.

    Args:
        host: the `--host` address.
        port: the `--port` number.

    Raises:
        UsageError: the port is in use or not allowed, or the host is not an address of this
            machine.
    """
    shown = f"--host {host} --port {port}"
    if not 0 < port < 65536:
        raise UsageError("The port must be between 1 and 65535.", "Pick another --port.", shown)
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                                   socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"The host name does not resolve ({exc.strerror}).",
                         "Give --host an address of this machine, e.g. 127.0.0.1.",
                         shown) from exc
    for family, kind, proto, _, address in infos:
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:  # an address family this machine lacks (no IPv6)
            if exc.errno == errno.EAFNOSUPPORT:
                continue
            raise
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address[:2] if family == socket.AF_INET else address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise UsageError(
                        f"Port {port} is already in use on {address[0]} (another insight "
                        "or Streamlit server?).",
                        f"Stop that server, or choose a free port with --port, e.g. --port "
                        f"{port + 1 if port < 65535 else 8502}.", shown) from exc
                if exc.errno == errno.EADDRNOTAVAIL and host == "localhost" and \
                        family == socket.AF_INET6:
                    continue  # tornado skips ::1 too when IPv6 is off
                if exc.errno == errno.EACCES:
                    raise UsageError(
                        f"Port {port} needs privileges to listen on (ports below 1024 do).",
                        "Choose a port above 1023 with --port, e.g. --port 8501.",
                        shown) from exc
                raise UsageError(
                    f"Cannot listen on {address[0]} port {port}: {exc.strerror}.",
                    "Give --host an address of this machine (127.0.0.1, or 0.0.0.0 for "
                    "every interface) and a free --port.", shown) from exc


def run_serve(args: argparse.Namespace) -> int:
    """Serve the app until interrupted; returns Streamlit's exit status."""
    from insight.model.fetched import fetch_model, named_as
    from insight.model.loading import check_safety
    from insight.model.samples import is_bundled
    from insight.model.sandbox import LoadLimits, check_in_child, prestart

    limits = LoadLimits.parse(args.load_timeout, args.load_memory)  # a bad limit: one line

    # Every companion is checked now (a local path that does not exist, a bucket or key
    # that does not, refused credentials, a shard glob matching nothing): one line, before
    # the server starts, never an error found later in a page.
    data, features, data_fn = check_data(args.data, args.features, args.data_fn)
    logdir, compare = (check_given(flag, value) for flag, value in (
        ("--logdir", args.logdir), ("--compare", args.compare)))
    check_path("--custom-objects", args.custom_objects)
    # A remote model is fetched into insight's cache now (a missing bucket or refused
    # credentials: one line, before the server starts); the child and Keras read that copy.
    local = fetch_model(args.model) if args.model else None
    if local and Path(local).expanduser().exists() and not is_bundled(local):
        # The child that will load the model first starts importing Keras now, beside the
        # server's own import, instead of after it: one TensorFlow start on the way to the
        # first page, not two in a row (a user's file loads in that child first).
        prestart()
    if local:
        # Fail fast with one line, before the server starts: the preflight runs in a child
        # with the load limits (a config bomb costs the child), without TensorFlow.
        try:
            report = check_in_child(local, safe_mode=not args.unsafe, limits=limits,
                                    load=False)
            check_safety(report, safe_mode=not args.unsafe)
        except InsightError as exc:
            named_as(exc, local, args.model)
            raise
    # The app is given the URL (it names the model by it and finds the same cached copy).
    model = (args.model if is_remote(args.model) else
             str(Path(args.model).expanduser().resolve()) if args.model else None)
    root = _root(args.root)
    token, generated = resolve_token(args)
    os.environ.pop(TOKEN_ENV, None)  # not inherited by the loaders and captures it starts
    opts = LaunchOptions(model=model, data=data, logdir=logdir, compare=compare,
                         unsafe=args.unsafe, custom_objects=absolute(args.custom_objects),
                         load_timeout=args.load_timeout, load_memory=args.load_memory,
                         features=features, data_fn=data_fn, max_examples=args.max_examples)
    check_port(args.host, args.port)  # one line naming --port, not Streamlit's own error
    if root:
        os.environ["INSIGHT_ROOT"] = root
    if not is_loopback(args.host):
        if not root:
            os.environ["INSIGHT_LOCKED"] = "1"
        print(f"insight: binding {args.host}: anyone who reaches this address "
              + ("and has the token " if token else "") + "can use the app ("
              + (f"typed paths stay inside {root}" if root else "typed paths are off; "
                 "--root DIR shares a folder") + ").", file=sys.stderr)
        if token is None:
            print("insight: WARNING: --no-token: no sign-in; anyone on the network can use "
                  "this app and read what it shows.", file=sys.stderr)
    url = f"http://{_url_host(args.host)}:{args.port}/"
    if generated:
        url += f"?token={token}"
    elif token:
        url += f" (the token from {'--token' if args.token else TOKEN_ENV})"
    print(f"insight: serving {model or 'the bundled samples'} at {url}", flush=True)
    from insight.ui.serve import serve

    return serve(opts, host=args.host, port=args.port, token=token,
                 hosts=allowed_hosts(args.host, args.allow_host))


def _root(given: str | None) -> str | None:
    if given is None:
        return None
    root = Path(given).expanduser()
    if not root.is_dir():
        raise UsageError("--root must be an existing folder.",
                         "Give the folder whose files visitors may open.", f"--root {given}")
    return str(root.resolve())


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
