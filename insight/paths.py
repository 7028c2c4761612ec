"""Paths typed into the app by visitors: confined to a folder, or refused.

A path given on the command line (`insight serve MODEL --data ... --logdir ...`) is the
operator's choice and trusted. A path typed into a widget (the sidebar's model, data and
logdir fields, the Embeddings page's vectors and metadata files) comes from whoever reaches
the server. `insight serve --root DIR` confines those to `DIR`; served beyond localhost
without `--root`, no widget takes a typed path at all (`locked`).

Example:

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> (root / "runs").mkdir()
>>> confine("runs", root) == (root / "runs").resolve()
True
>>> confine("/etc/passwd", root)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
insight.errors.UsageError: The path is outside the folder this server shares (--root)...
>>> confine("runs/../../x", root)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
insight.errors.UsageError: A path with '..' is not accepted on this server...
"""

from __future__ import annotations

from pathlib import Path

from insight.errors import UsageError
from insight.remote.urls import check_url, is_remote

__all__ = ["confine", "typed_path"]


def confine(path: str | Path, root: str | Path) -> Path:
    """`path` resolved (symlinks followed) and checked to lie inside `root`.

    A relative path is read relative to `root`. A path with a `..` part is refused even
    when it would resolve inside `root` (a visitor has no reason to type one), and so is
    anything that resolves outside it, a symlink pointing out included. The path need not
    exist (a folder to write into).

    Args:
        path: what the visitor typed.
        root: the folder the server shares (`--root`).

    Returns:
        The resolved path, inside the resolved `root`.

    Raises:
        UsageError: `..` in the path, a NUL byte, a symlink loop, or a path outside `root`.
    """
    text = str(path).strip()
    shown = f"path={text!r}"
    base = Path(root).expanduser().resolve()
    if "\x00" in text:
        raise UsageError("A path cannot contain a NUL byte.", "Type the path again.", shown)
    given = Path(text).expanduser()
    if ".." in given.parts:
        raise UsageError("A path with '..' is not accepted on this server.",
                         f"Give a path inside {base} without '..'.", shown)
    try:
        resolved = (given if given.is_absolute() else base / given).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
        raise UsageError("The path cannot be resolved (a symlink loop?).",
                         f"Give a plain path inside {base}.", shown) from exc
    if not resolved.is_relative_to(base):
        plain = given if given.is_absolute() else base / given
        what = ("The path is a symlink leading outside the folder this server shares"
                if plain.absolute().is_relative_to(base) else
                "The path is outside the folder this server shares")
        raise UsageError(f"{what} (--root).",
                         f"Give a path inside {base} (relative paths start there).", shown)
    return resolved


def typed_path(value: str, *, root: str | Path | None, locked: bool) -> Path | str:
    """The path a visitor typed, as the server's policy allows it.

    A remote URL (`s3://`, `gs://`) is read with the server's own credentials, so a visitor
    may type one only on a server that is neither confined (`--root`) nor locked: on a team
    server, remote logdirs and models are the operator's choice (`--logdir s3://...`).

    Args:
        value: the widget's text (not empty).
        root: `--root`, or `None`. Defaults to no confinement.
        locked: served beyond localhost without `--root`: typed paths are refused.

    Returns:
        The path: confined and resolved under `root`, else `~` expanded and resolved; a
        checked URL string for a remote path.

    Raises:
        UsageError: typed paths are off on this server, `confine` refused the path, or a
            remote URL was typed on a confined or locked server (or is malformed).

    Example:

    >>> typed_path("/tmp", root=None, locked=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    insight.errors.UsageError: This server does not open typed paths...
    """
    if is_remote(value.strip()):
        if root or locked:
            raise UsageError("This server does not open remote paths typed in the page: they "
                             "would be read with the server's own credentials.",
                             "Ask whoever runs it to pass the URL on the command line "
                             "(--logdir s3://... or the model's URL).",
                             f"path={value.strip().split('://')[0]}://...")
        return check_url(value)
    if root:
        return confine(value, root)
    if locked:
        raise UsageError("This server does not open typed paths: it is served beyond "
                         "localhost without --root.",
                         "Ask whoever runs it to start it with --root DIR (a shared folder), "
                         "or to pass the file with --data/--logdir.",
                         f"path={value.strip()!r}")
    return Path(value.strip()).expanduser().resolve()
