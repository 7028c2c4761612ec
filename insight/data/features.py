"""The features spec: how the `tf.train.Example` records of TFRecord shards become inputs.

A JSON file (`--features spec.json`) names every feature to parse, its dtype and per-example
shape, which features are the model's inputs and which one holds the labels:

```json
{
  "features": {
    "image": {"dtype": "float32", "shape": [28, 28, 1]},
    "pixels": {"dtype": "uint8", "shape": [28, 28, 1], "encoding": "raw"},
    "label": {"dtype": "int64", "shape": []}
  },
  "inputs": ["image"],
  "labels": "label",
  "class_names": ["zero", "one"]
}
```

- `dtype`: `float32` or `int64` (stored as a `float_list` / `int64_list`), or with
  `"encoding": "raw"` any fixed-size numeric dtype (`uint8`, `float16`, `int32`, ...)
  whose bytes are stored in one `bytes_list` value (`array.tobytes()`).
- `shape`: the shape of one example, `[]` for a scalar; every size fixed.
- `inputs`: one feature name, or a list; for a model with several inputs, the feature names
  are the model's input names.
- `labels` (optional): one feature name, or `{output_name: feature}` per output.
- `class_names` (optional): the name of each class index.

Unknown keys, unknown dtypes, features named by `inputs`/`labels` but not declared, and
shapes that are not lists of positive integers are refused with a `DataError`.

Example:

>>> spec = parse_features({"features": {"x": {"dtype": "float32", "shape": [4]},
...                                     "y": {"dtype": "int64", "shape": []}},
...                        "inputs": "x", "labels": "y"})
>>> spec.inputs, spec.labels, spec.features["x"].shape
(['x'], 'y', (4,))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from insight.errors import DataError

__all__ = ["Feature", "FeatureSpec", "parse_features", "read_features", "PLAIN_DTYPES",
           "RAW_DTYPES", "MAX_SPEC_BYTES"]

PLAIN_DTYPES = ("float32", "int64")  # what tf.train.Example's float_list / int64_list hold
RAW_DTYPES = ("uint8", "int8", "uint16", "int16", "int32", "int64", "float16", "float32",
              "float64")
MAX_SPEC_BYTES = 1 << 20
_TOP_KEYS = {"features", "inputs", "labels", "class_names"}
_FEATURE_KEYS = {"dtype", "shape", "encoding"}
_FIX = ("Write the spec as documented in insight.data.features (and the README): "
        '{"features": {"image": {"dtype": "float32", "shape": [28, 28, 1]}, "label": '
        '{"dtype": "int64", "shape": []}}, "inputs": "image", "labels": "label"}.')


@dataclass(frozen=True)
class Feature:
    """One feature of the records: its dtype, per-example shape and encoding (`""` or
    `"raw"`)."""

    dtype: str
    shape: tuple[int, ...]
    encoding: str = ""


@dataclass(frozen=True)
class FeatureSpec:
    """What to parse from each record, and which features are inputs and labels.

    Attributes:
        features: `{name: Feature}`.
        inputs: the input feature names, in order.
        labels: the label feature, `{output_name: feature}`, or `None`.
        class_names: the class names, when given.
    """

    features: dict[str, Feature]
    inputs: list[str]
    labels: str | dict[str, str] | None = None
    class_names: list[str] | None = None

    def parse_batch(self, serialized: Any) -> tuple[Any, Any]:
        """`(x, y)` of a batch of serialized `tf.train.Example`s, in the graph (`tf.data.map`):
        `x` one tensor for one input, else `{name: tensor}`; `y` likewise, or `None`."""
        import tensorflow as tf

        wanted = set(self.inputs) | set(self.label_features())
        description = {}
        for name in wanted:
            f = self.features[name]
            description[name] = (tf.io.FixedLenFeature([], tf.string) if f.encoding == "raw"
                                 else tf.io.FixedLenFeature(f.shape, tf.as_dtype(f.dtype)))
        parsed = tf.io.parse_example(serialized, description)
        for name in wanted:
            f = self.features[name]
            if f.encoding == "raw":
                values = tf.io.decode_raw(parsed[name], tf.as_dtype(f.dtype))
                parsed[name] = tf.reshape(values, (-1, *f.shape))
        x = parsed[self.inputs[0]] if len(self.inputs) == 1 else \
            {k: parsed[k] for k in self.inputs}
        if self.labels is None:
            return x, None
        if isinstance(self.labels, dict):
            return x, {out: parsed[f] for out, f in self.labels.items()}
        return x, parsed[self.labels]

    def label_features(self) -> list[str]:
        """The features that hold labels."""
        if self.labels is None:
            return []
        return list(self.labels.values()) if isinstance(self.labels, dict) else [self.labels]


def read_features(path: str | Path) -> FeatureSpec:
    """Read and check a features spec JSON file (a local path, or an `s3://`/`gs://` URL,
    fetched into insight's cache first).

    Raises:
        DataError: the file is missing, too large, not JSON, or not a valid spec.

    Example:

    >>> read_features("shards/features.json").inputs  # doctest: +SKIP
    ['image']
    """
    from insight.remote import fetch, is_remote

    shown = f"features={str(path)!r}"
    local = fetch(str(path), max_bytes=MAX_SPEC_BYTES) if is_remote(str(path)) else \
        Path(path).expanduser()
    if not local.is_file():
        raise DataError("There is no features spec file at this path.",
                        "Give --features the JSON file that describes the records.", shown)
    if local.stat().st_size > MAX_SPEC_BYTES:
        raise DataError("The features spec is larger than 1 MiB: not a spec.",
                        "Give the small JSON file that describes the records.", shown)
    try:
        value = json.loads(local.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"The features spec is not valid JSON ({exc}).", _FIX, shown) from None
    return parse_features(value, where=str(path))


def parse_features(value: Any, *, where: str = "the features spec") -> FeatureSpec:
    """Check a features spec (already decoded from JSON) and return it as a `FeatureSpec`.

    Raises:
        DataError: unknown keys or dtypes, bad shapes, undeclared input or label features.
    """
    if not isinstance(value, dict):
        _fail(f"{where} must be a JSON object.", f"type={type(value).__name__}")
    unknown = sorted(set(value) - _TOP_KEYS)
    if unknown:
        _fail(f"Unknown keys in {where}: {unknown}; the keys are {sorted(_TOP_KEYS)}.",
              f"keys={sorted(value)}")
    raw = value.get("features")
    if not isinstance(raw, dict) or not raw:
        _fail(f"{where} needs a non-empty 'features' object: feature name -> "
              "{dtype, shape}.", f"features={raw!r}"[:200])
    features = {str(k): _feature(str(k), v, where) for k, v in raw.items()}
    inputs = value.get("inputs")
    inputs = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(inputs, list) or not inputs or \
            not all(isinstance(n, str) for n in inputs):
        _fail(f"{where} needs 'inputs': a feature name, or a list of them.",
              f"inputs={value.get('inputs')!r}")
    labels = value.get("labels")
    if labels is not None and not isinstance(labels, str) and not (
            isinstance(labels, dict) and labels
            and all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())):
        _fail(f"'labels' in {where} is a feature name or {{output_name: feature}}.",
              f"labels={labels!r}")
    named = list(inputs) + ([] if labels is None else
                            list(labels.values()) if isinstance(labels, dict) else [labels])
    missing = [n for n in named if n not in features]
    if missing:
        _fail(f"{where} names features it does not declare: {missing}; declared: "
              f"{sorted(features)}.", f"missing={missing}")
    if len(set(inputs)) != len(inputs):
        _fail(f"'inputs' in {where} names a feature twice.", f"inputs={inputs}")
    classes = value.get("class_names")
    if classes is not None and (not isinstance(classes, list) or
                                not all(isinstance(c, str | int) for c in classes)):
        _fail(f"'class_names' in {where} is a list of names.", f"class_names={classes!r}"[:200])
    return FeatureSpec(features, list(inputs), labels,
                       None if classes is None else [str(c) for c in classes])


def _feature(name: str, value: Any, where: str) -> Feature:
    shown = f"features[{name!r}]={value!r}"[:300]
    if not isinstance(value, dict):
        _fail(f"Feature {name!r} of {where} must be an object with 'dtype' and 'shape'.", shown)
    unknown = sorted(set(value) - _FEATURE_KEYS)
    if unknown:
        _fail(f"Unknown keys {unknown} in feature {name!r} of {where}; the keys are "
              f"{sorted(_FEATURE_KEYS)}.", shown)
    encoding = value.get("encoding", "")
    if encoding not in ("", "raw"):
        _fail(f"Feature {name!r}: 'encoding' is \"raw\" (the array's bytes in one bytes_list "
              "value) or absent.", shown)
    dtype = value.get("dtype")
    allowed = RAW_DTYPES if encoding == "raw" else PLAIN_DTYPES
    if dtype not in allowed:
        extra = "" if encoding == "raw" else \
            ' (other dtypes are stored as bytes: add "encoding": "raw")'
        _fail(f"Feature {name!r} has dtype {dtype!r}; it is one of {', '.join(allowed)}{extra}.",
              shown)
    shape = value.get("shape")
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        _fail(f"Feature {name!r}: 'shape' is a list of positive sizes of one example "
              "([] for a scalar).", shown)
    return Feature(str(dtype), tuple(shape), str(encoding))


def _fail(what: str, received: str) -> None:
    raise DataError(what, _FIX, received)
