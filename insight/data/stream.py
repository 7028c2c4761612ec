"""Data beyond memory: TFRecord shards (local or in a bucket) or a `tf.data` builder, streamed.

Two sources:

- shards: `--data 'shards/shard-*.tfrecord' --features spec.json` (or `s3://bucket/shard-*`).
  Local shards are read by `tf.data.TFRecordDataset(files, num_parallel_reads=AUTOTUNE)`;
  remote ones (TensorFlow's own filesystems have no `s3://`) are listed with fsspec's glob
  and each shard is fetched into insight's content-addressed cache
  (`insight.remote.fetch`) just before it is read, several at once, interleaved. Records are
  batched, then parsed by `tf.io.parse_example` with `num_parallel_calls=AUTOTUNE` as the
  features spec says (`insight.data.features`).
- a builder: `--data-fn data.py`, a Python file the user trusts (it is executed, like
  `--custom-objects`) defining `def dataset() -> tf.data.Dataset` whose elements are `x`,
  `(x,)`, `(x, y)` or `(x, y, sample_weight)`, batched or not. Never accepted from the app's
  widgets: only from the command line or the environment.

A `Stream` is read batch by batch and each batch goes through the same checks and fix-ups
as data in memory (`conform_to_model`), so only a batch, a few read ahead and the parser's
buffers are in memory at once. `Stream.head(n)` gives the first rows in memory: what one
gradient batch and the one-example probes read (the statistics and the projector's vectors
read the stream itself, batch by batch).

Example:

>>> stream = shard_stream("shards/shard-*.tfrecord", read_features("spec.json"))
... # doctest: +SKIP
>>> x, y = next(stream.batches(64))  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import importlib.util
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from insight.data.features import FeatureSpec
from insight.errors import DataError

__all__ = ["Stream", "shard_stream", "builder_stream", "is_stream_path", "list_shards",
           "STREAM_SUFFIXES", "HEAD_BYTES"]

STREAM_SUFFIXES = (".tfrecord", ".tfrecords")
HEAD_BYTES = 256 * 2**20  # the most `head` keeps in memory, whatever the rows asked for
_GLOB_CHARS = set("*?[")
_FETCH_AHEAD = 4  # remote shards fetched (and read) at once


def is_stream_path(path: str | Path | None) -> bool:
    """Whether `--data` names TFRecord shards (a file, a glob, or a URL of either).

    >>> is_stream_path("shards/shard-*.tfrecord"), is_stream_path("x.npz")
    (True, False)
    """
    if path is None:
        return False
    text = str(path).lower()
    return text.endswith(STREAM_SUFFIXES) or (
        bool(_GLOB_CHARS & set(text)) and ".tfrecord" in text.rsplit("/", 1)[-1])


def list_shards(pattern: str | Path) -> list[str]:
    """The shard files a pattern names, sorted: local paths, or URLs for `s3://`/`gs://`.

    Raises:
        DataError: nothing matches.
        StorageError: the bucket cannot be listed.
    """
    from insight.remote import filesystem, is_remote, storage_errors

    text = str(pattern)
    if is_remote(text):
        fs, key = filesystem(text)
        scheme = text.split("://", 1)[0]
        with storage_errors(text):
            found = fs.glob(key) if _GLOB_CHARS & set(key) else \
                ([key] if fs.exists(key) else [])
        files = sorted(f"{scheme}://{k}" for k in found)
    else:
        files = sorted(p for p in glob.glob(str(Path(text).expanduser()))
                       if Path(p).is_file())
    if not files:
        raise DataError("No TFRecord shard matches this data path.",
                        "Check the pattern (quote it, so the shell does not expand it), e.g. "
                        "--data 'shards/shard-*.tfrecord'.", f"data={text!r}")
    return files


@dataclass(frozen=True)
class Stream:
    """Examples read batch by batch from shards or a builder; nothing is read until asked.

    Attributes:
        name: what the UI calls it, e.g. `"shard-*.tfrecord (8 shards)"`.
        shards: the shard files or URLs (`()` for a builder).
        spec: the features spec of the shards (`None` for a builder).
        builder: the builder's `dataset` function (`None` for shards).
        max_examples: read at most this many examples, or `None` for all.
        fit: the per-batch check and fix-up (`conform_to_model`'s), `(x, y) -> (x, y)`.
        truncated: `max_examples` cuts the stream short: it holds more examples than are
            read (known once a read went one row past the cap: `first`).
    """

    name: str
    shards: tuple[str, ...] = ()
    spec: FeatureSpec | None = None
    builder: Callable[[], Any] | None = None
    max_examples: int | None = None
    fit: Callable[[Any, Any], tuple[Any, Any]] | None = None
    input_ranks: tuple[int, ...] = ()
    truncated: bool = False

    def __repr__(self) -> str:
        return (f"Stream(name={self.name!r}, shards={len(self.shards)}, "
                f"max_examples={self.max_examples})")

    def capped(self, n: int | None) -> Stream:
        """The same stream, reading at most `n` examples (`None`: unchanged)."""
        return replace(self, max_examples=_cap(self.max_examples, n))

    def tf_dataset(self, batch_size: int, max_examples: int | None = None,
                   errors: list[BaseException] | None = None):
        """The `tf.data.Dataset` of batches, `x` or `(x, y)`, before the per-batch fix-ups;
        a remote shard that cannot be fetched ends the reading, its error put in `errors`."""
        import tensorflow as tf

        cap = _cap(self.max_examples, max_examples)
        if self.spec is not None:
            records = self._records([] if errors is None else errors)
            if cap is not None:
                records = records.take(cap)
            spec = self.spec
            parse = (lambda r: spec.parse_batch(r)) if spec.labels is not None else \
                (lambda r: spec.parse_batch(r)[0])
            ds = records.batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = self._built()
            if cap is not None:
                ds = ds.take(cap)
            ds = ds.batch(batch_size)
        return ds.prefetch(tf.data.AUTOTUNE)

    def batches(self, batch_size: int = 64, max_examples: int | None = None
                ) -> Iterator[tuple[Any, Any]]:
        """`(x, y)` batches as numpy arrays (`y` is `None` without labels), fitted to the
        model, in a deterministic order.

        Raises:
            DataError: a record that does not parse as the spec says, a corrupt shard, or a
                batch that does not fit the model.
            StorageError: a remote shard cannot be fetched.
        """
        import tensorflow as tf

        errors: list[BaseException] = []
        ds = self.tf_dataset(batch_size, max_examples, errors)
        it = ds.as_numpy_iterator()
        while True:
            try:
                element = next(it)
            except StopIteration:
                if errors:
                    raise errors[0] from None
                return
            except tf.errors.OpError as exc:
                if errors:
                    raise errors[0] from None
                raise DataError(f"Reading {self.name} failed: "
                                f"{exc.message.splitlines()[0][:300]}",
                                "Check that the features spec matches the records (names, "
                                "dtypes, shapes) and that no shard is truncated or corrupt.",
                                f"data={self.name!r}") from None
            x, y = _split(element) if self.spec is None else \
                (element if self.spec.labels is not None else (element, None))
            yield self.fit(x, y) if self.fit is not None else (x, y)

    def head(self, n: int) -> tuple[Any, Any]:
        """The first `n` examples (fewer when the stream is shorter, or when `n` rows would
        pass `HEAD_BYTES`) as `(x, y)` arrays."""
        x, y, _ = self.first(n)
        return x, y

    def first(self, n: int) -> tuple[Any, Any, bool]:
        """`(x, y, ended)`: the first `n` examples as `head` gives them, and whether the
        stream (under its cap) ended before `n` rows, so that it holds exactly those (`False`
        when `HEAD_BYTES` stopped the read first: the rest is unknown)."""
        xs: list[Any] = []
        ys: list[Any] = []
        rows = size = 0
        ended = True  # unless a break below stops the read at `n` rows or `HEAD_BYTES`
        for x, y in self.batches(min(n, 256), n):
            xs.append(x)
            ys.append(y)
            rows += _rows(x)
            size += _nbytes(x)
            if rows >= n or size >= HEAD_BYTES:
                ended = False
                break
        if not xs:
            raise DataError(f"{self.name} holds no examples.", "Give shards that hold records.",
                            f"data={self.name!r}")
        return _concat(xs), (None if ys[0] is None else _concat(ys)), ended

    def _records(self, errors: list[BaseException]):
        import tensorflow as tf

        from insight.remote import is_remote

        if not is_remote(self.shards[0]):
            return tf.data.TFRecordDataset(list(self.shards),
                                           num_parallel_reads=tf.data.AUTOTUNE)
        from insight.remote import fetch

        urls = list(self.shards)

        def local_paths():
            for url in urls:
                try:
                    yield str(fetch(url))
                except Exception as exc:  # noqa: BLE001  re-raised by `batches`
                    errors.append(exc)
                    return

        names = tf.data.Dataset.from_generator(
            local_paths, output_signature=tf.TensorSpec((), tf.string))
        # The generator fetches a shard when the interleave opens it: `cycle_length` shards
        # downloaded and read at once, the rest only when (and if) they are reached.
        return names.interleave(tf.data.TFRecordDataset, cycle_length=_FETCH_AHEAD,
                                block_length=1, num_parallel_calls=_FETCH_AHEAD,
                                deterministic=True)

    def _built(self):
        import tensorflow as tf

        ds = self.builder()
        if not isinstance(ds, tf.data.Dataset):
            raise DataError("The data builder's dataset() must return a tf.data.Dataset.",
                            "Return e.g. tf.data.TFRecordDataset(files).map(parse).",
                            f"returned={type(ds).__name__}")
        spec = ds.element_spec
        x_spec = spec[0] if isinstance(spec, tuple) else spec
        first = next(iter(x_spec.values())) if isinstance(x_spec, dict) else x_spec
        rank = getattr(getattr(first, "shape", None), "rank", None)
        if self.input_ranks and rank is not None and rank == self.input_ranks[0]:
            ds = ds.unbatch()  # batched by the builder: insight batches itself
        return ds


def shard_stream(pattern: str | Path, spec: FeatureSpec) -> Stream:
    """A `Stream` over the TFRecord shards `pattern` matches, parsed by `spec`.

    Raises:
        DataError: no shard matches.
        StorageError: the bucket cannot be listed.
    """
    shards = tuple(list_shards(pattern))
    name = f"{Path(str(pattern)).name} ({len(shards):,} shard{'s' * (len(shards) != 1)})"
    return Stream(name, shards, spec)


def builder_stream(path: str | Path) -> Stream:
    """A `Stream` over the `tf.data.Dataset` that `dataset()` in the file at `path` returns.

    The file is executed: only pass files you trust (`--data-fn`, never a typed path).

    Raises:
        DataError: no such file, not a `.py` file, or no `dataset` function in it.
    """
    p = Path(path).expanduser()
    shown = f"data_fn={str(path)!r}"
    if not p.is_file() or p.suffix != ".py":
        raise DataError("The data builder must be an existing .py file.",
                        "Give --data-fn a Python file defining `def dataset() -> "
                        "tf.data.Dataset`.", shown)
    module_spec = importlib.util.spec_from_file_location(f"insight_data_fn_{uuid.uuid4().hex}",
                                                         p)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise DataError(f"Running the data builder failed: {type(exc).__name__}: {exc}",
                        "Fix the file; it must run on its own.", shown) from exc
    fn = getattr(module, "dataset", None)
    if not callable(fn):
        raise DataError("The data builder defines no dataset() function.",
                        "Define `def dataset() -> tf.data.Dataset` in the file.", shown)
    return Stream(f"dataset() of {p.name}", builder=fn)


def _split(element: Any) -> tuple[Any, Any]:
    if isinstance(element, tuple | list):
        if not 1 <= len(element) <= 3:
            raise DataError("The builder's elements are x, (x,), (x, y) or "
                            "(x, y, sample_weight).", "Return one of those.",
                            f"element_length={len(element)}")
        return element[0], (element[1] if len(element) > 1 else None)
    return element, None


def _cap(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _rows(x: Any) -> int:
    first = next(iter(x.values())) if isinstance(x, dict) else x
    return int(np.shape(first)[0])


def _nbytes(x: Any) -> int:
    return sum(np.asarray(v).nbytes for v in x.values()) if isinstance(x, dict) else \
        np.asarray(x).nbytes


def _concat(parts: list[Any]) -> Any:
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)
