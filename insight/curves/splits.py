"""Which split a training series belongs to: train, validation, or neither.

Keras and TensorBoard name the two sides of a metric in three ways: the `val_` prefix of a
`History` or `CSVLogger` column (`loss` / `val_loss`), run folders of the TensorBoard callback
(`train/` / `validation/`), and tag prefixes (`train/epoch_loss`). `split_of` reads all three;
`train_val_pairs` finds the series to draw (and check for overfitting) together.

Example:

>>> from insight.curves.splits import split_of
>>> split_of("exp1/validation", "epoch_loss")
('exp1', 'validation', 'epoch_loss')
"""

from __future__ import annotations

import pandas as pd

__all__ = ["TRAIN_NAMES", "VAL_NAMES", "label_series", "split_of", "train_val_pairs"]

TRAIN_NAMES = {"train", "training"}
VAL_NAMES = {"validation", "val", "valid", "eval", "evaluation"}


def split_of(run: str, tag: str) -> tuple[str, str, str]:
    """`(group, split, metric)` of a series: `split` is `"train"`, `"validation"` or `""`.

    Recognised: Keras' `val_` prefix (`loss` / `val_loss`), run folders named like
    `train` / `validation` (the TensorBoard callback), and tag prefixes
    (`train/epoch_loss` / `validation/epoch_loss`).

    >>> split_of("history", "val_loss")
    ('history', 'validation', 'loss')
    >>> split_of("exp1/train", "epoch_loss")
    ('exp1', 'train', 'epoch_loss')
    >>> split_of(".", "validation/epoch_loss")
    ('.', 'validation', 'epoch_loss')
    """
    parts = run.split("/")
    if tag.startswith("val_"):
        return run, "validation", tag[4:]
    head, _, rest = tag.partition("/")
    if rest and head.lower() in TRAIN_NAMES | VAL_NAMES:
        return run, "train" if head.lower() in TRAIN_NAMES else "validation", rest
    last = parts[-1].lower()
    if last in TRAIN_NAMES | VAL_NAMES:
        group = "/".join(parts[:-1]) or "."
        return group, "train" if last in TRAIN_NAMES else "validation", tag
    return run, "", tag


def label_series(keys) -> pd.DataFrame:
    """`run, tag, group, split, metric` for each `(run, tag)` key."""
    rows = [(r, t, *split_of(r, t)) for r, t in keys]
    return pd.DataFrame(rows, columns=["run", "tag", "group", "split", "metric"])


def train_val_pairs(keys) -> pd.DataFrame:
    """The train/validation pairs among `(run, tag)` keys (or a scalars frame): one row per
    `group, metric` with `train_run, train_tag, val_run, val_tag`.

    >>> train_val_pairs([("history", "loss"), ("history", "val_loss")]).iloc[0].tolist()
    ['history', 'loss', 'history', 'loss', 'history', 'val_loss']
    """
    if isinstance(keys, pd.DataFrame):
        keys = keys[["run", "tag"]].drop_duplicates().itertuples(index=False, name=None)
    found: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}
    for run, tag in keys:
        group, split, metric = split_of(run, tag)
        side = "validation" if split == "validation" else "train"
        found.setdefault((group, metric), {}).setdefault(side, (run, tag))
    out = [(g, m, *sides["train"], *sides["validation"])
           for (g, m), sides in sorted(found.items()) if len(sides) == 2]
    return pd.DataFrame(out, columns=["group", "metric", "train_run", "train_tag", "val_run",
                                      "val_tag"])
