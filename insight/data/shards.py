"""Arrays written as TFRecord shards of `tf.train.Example`s, with their features spec.

What `insight.data.stream` reads back: a way to turn `.npz` data into shards for
`--data 'shards/shard-*.tfrecord' --features shards/features.json`, and the fixture of the
tests and benchmarks.

Example:

>>> import numpy as np
>>> pattern, spec = write_shards("/tmp/shards", np.zeros((10, 4), "float32"),
...                              np.arange(10), shards=2)  # doctest: +SKIP
>>> pattern  # doctest: +SKIP
'/tmp/shards/shard-*.tfrecord'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from insight.errors import DataError

__all__ = ["write_shards"]


def write_shards(folder: str | Path, x: np.ndarray | dict[str, np.ndarray],
                 y: np.ndarray | None = None, *, shards: int = 4,
                 class_names: list[str] | None = None) -> tuple[str, dict[str, Any]]:
    """Write `x` (and labels `y`) as `shards` TFRecord files, rows dealt out in order
    (shard `k` holds rows `k*n/shards` to `(k+1)*n/shards`), and `features.json` beside them.

    Float arrays are stored as `float_list` (float32), integer arrays as `int64_list`, and
    `uint8` arrays as raw bytes.

    Args:
        folder: where the shards go (created).
        x: one input array, or `{input_name: array}`.
        y: integer or float labels, or `None`. Defaults to `None`.
        shards: number of files. Defaults to `4`.
        class_names: written into the spec. Defaults to `None`.

    Returns:
        `(glob pattern of the shards, the features spec as a dict)`.

    Raises:
        DataError: arrays of different lengths, or fewer rows than shards.
    """
    import tensorflow as tf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    inputs = dict(x) if isinstance(x, dict) else {"x": x}
    columns = {k: np.asarray(v) for k, v in inputs.items()}
    if y is not None:
        columns["label"] = np.asarray(y)
    n = {len(v) for v in columns.values()}
    if len(n) != 1 or next(iter(n)) < shards:
        raise DataError("The arrays need one row per example, at least one per shard.", "",
                        f"lengths={sorted(n)}, shards={shards}")
    rows = next(iter(n))
    spec: dict[str, Any] = {"features": {}, "inputs": list(inputs)}
    for k, v in columns.items():
        if v.dtype == np.uint8:
            spec["features"][k] = {"dtype": "uint8", "shape": list(v.shape[1:]),
                                   "encoding": "raw"}
        else:
            spec["features"][k] = {"dtype": "int64" if v.dtype.kind in "biu" else "float32",
                                   "shape": list(v.shape[1:])}
    if y is not None:
        spec["labels"] = "label"
    if class_names is not None:
        spec["class_names"] = list(class_names)
    bounds = np.linspace(0, rows, shards + 1).astype(int)
    for k in range(shards):
        with tf.io.TFRecordWriter(str(folder / f"shard-{k:05d}.tfrecord")) as writer:
            for i in range(bounds[k], bounds[k + 1]):
                writer.write(_example(columns, i).SerializeToString())
    (folder / "features.json").write_text(json.dumps(spec, indent=2))
    return str(folder / "shard-*.tfrecord"), spec


def _example(columns: dict[str, np.ndarray], i: int):
    import tensorflow as tf

    feats = {}
    for k, v in columns.items():
        row = v[i]
        if v.dtype == np.uint8:
            feats[k] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[row.tobytes()]))
        elif v.dtype.kind in "biu":
            feats[k] = tf.train.Feature(int64_list=tf.train.Int64List(
                value=np.ravel(row).astype(np.int64)))
        else:
            feats[k] = tf.train.Feature(float_list=tf.train.FloatList(
                value=np.ravel(row).astype(np.float32)))
    return tf.train.Example(features=tf.train.Features(feature=feats))
