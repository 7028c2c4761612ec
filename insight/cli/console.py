"""What every subcommand shares on the terminal: TensorFlow's native chatter kept quiet.

Example:

>>> with quiet_native_stderr(True):  # doctest: +SKIP
...     import tensorflow
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from insight.errors import UsageError

__all__ = ["quiet_native_stderr", "check_path", "absolute"]


@contextmanager
def quiet_native_stderr(enabled: bool) -> Iterator[None]:
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


def check_path(flag: str, value: str | None) -> None:
    """Raise a one-line `UsageError` when the path given to `flag` does not exist."""
    if value and not Path(value).expanduser().exists():
        raise UsageError(f"The {flag} path does not exist.", "Check the path.",
                         f"{flag}={value!r}")


def absolute(value: str | None) -> str | None:
    """`value` as an absolute path (`~` expanded), or `None`."""
    return str(Path(value).expanduser().resolve()) if value else None
