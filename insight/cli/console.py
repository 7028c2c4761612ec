"""What every subcommand shares: TensorFlow's native chatter kept quiet, and the paths it is
given checked before any model loads or server starts (one `error:` line, exit 2).

Example:

>>> with quiet_native_stderr(True):  # doctest: +SKIP
...     import tensorflow
>>> check_data("shards/*.tfrecord", "shards/features.json", None)  # doctest: +SKIP
('/home/me/shards/*.tfrecord', '/home/me/shards/features.json', None)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from insight.errors import UsageError

__all__ = ["quiet_native_stderr", "check_path", "absolute", "check_remote", "check_data"]


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


def check_remote(url: str) -> str:
    """`url` checked (`insight.remote.check_url`), then looked up in its storage: a missing
    bucket or key, refused credentials or an unreachable endpoint fail now, not in a page.

    Raises:
        UsageError: a URL insight refuses (credentials or a query in it, `..`).
        StorageError: nothing exists there, or the storage cannot be reached or read.
    """
    from insight.remote import check_url, filesystem, storage_errors

    url = check_url(url)
    fs, key = filesystem(url)
    with storage_errors(url):
        fs.info(key)  # FileNotFoundError names a missing bucket apart from a missing key
    return url


def check_given(flag: str, value: str | None) -> str | None:
    """A companion path (`--logdir`, `--compare`, `--data`) as the readers get it: an
    `s3://`/`gs://` URL checked in its storage (`check_remote`), else an existing local path
    made absolute.

    Raises:
        UsageError: a local path that does not exist, or a refused URL.
        StorageError: a URL with nothing behind it, or a storage that cannot be read.
    """
    from insight.remote import is_remote

    if is_remote(value):
        return check_remote(value)
    check_path(flag, value)
    return absolute(value)


def check_data(data: str | None, features: str | None, data_fn: str | None
               ) -> tuple[str | None, str | None, str | None]:
    """`(data, features, data_fn)` checked and made absolute: TFRecord shards
    (`'shards/*.tfrecord'` or an `s3://` glob) are listed and their features spec read now,
    so a glob matching nothing or a bad spec is one line before any model loads.

    Raises:
        UsageError: `--data` with `--data-fn`, shards without `--features`, `--features`
            without shards, a local path that does not exist.
        DataError: no shard matches, or the features spec is not valid.
        StorageError: the bucket cannot be listed.
    """
    from insight.data.features import read_features
    from insight.data.stream import is_stream_path, list_shards
    from insight.remote import check_url, is_remote

    if data and data_fn:
        raise UsageError("Both --data and --data-fn were given.",
                         "Give one: --data-fn's dataset() replaces --data.",
                         f"--data {data!r} --data-fn {data_fn!r}")
    check_path("--data-fn", data_fn)
    stream = is_stream_path(data)
    if features and not stream:
        raise UsageError("--features describes TFRecord shards, and --data names none.",
                         "Give --data 'shards/*.tfrecord' (quoted) with it, or drop "
                         "--features.", f"--data {data!r} --features {features!r}")
    if stream:
        if not features:
            raise UsageError("TFRecord shards need a features spec saying what each record "
                             "holds.", "Give --features spec.json (see the README's 'Data "
                             "beyond memory').", f"--data {data!r}")
        data = check_url(data) if is_remote(data) else \
            str(Path(data).expanduser().parent.resolve() / Path(data).name)
        list_shards(data)  # DataError when nothing matches, StorageError when not listed
        features = features if is_remote(features) else absolute(features)
        read_features(features)
    else:
        data = check_given("--data", data)
    return data, features, absolute(data_fn)
