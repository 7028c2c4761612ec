"""Which layers of two models correspond, and what differs between them: a `git diff` for models.

Layers are matched by path first (two trainings of one architecture, or two widths of one
`keras.applications` model, keep their names); the layers left over on both sides are
aligned in order by their class sequence (`difflib`), so a model rebuilt with auto-numbered
names (`conv2d_3` for `conv2d`) still matches layer by layer. A matched pair is `same` when
class, config (the name aside), output shape and parameter count agree, else `changed`;
the leftovers are `removed` (only in A) and `added` (only in B).

Example:

>>> diff = architecture_diff(loaded_a, loaded_b)  # doctest: +SKIP
>>> diff.loc[diff.status != "same", ["layer_a", "layer_b", "changed_keys"]]  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import pandas as pd

from insight.model.layers import as_model, iter_layers, output_shape_text, param_count

__all__ = ["architecture_diff", "match_layers", "LayerInfo", "DIFF_COLUMNS"]

DIFF_COLUMNS = ["status", "layer_a", "layer_b", "class", "changed_keys", "shape_a", "shape_b",
                "params_a", "params_b"]

# Config entries that name or place a layer rather than define it.
_IGNORED_KEYS = {"name"}


@dataclass(frozen=True)
class LayerInfo:
    """What the diff compares of one layer."""

    path: str
    layer: Any
    cls: str
    shape: str
    params: int


def layer_infos(model: Any) -> list[LayerInfo]:
    """Every layer of a model (nested ones as `outer/inner`), input layers excluded, in order.

    >>> [i.path for i in layer_infos(loaded)][:2]  # doctest: +SKIP
    ['conv1', 'pool1']
    """
    out = []
    for path, layer, _ in iter_layers(as_model(model)):
        if type(layer).__name__ == "InputLayer":
            continue
        out.append(LayerInfo(path, layer, type(layer).__name__, output_shape_text(layer),
                             param_count(layer)))
    return out


def match_layers(infos_a: list[LayerInfo], infos_b: list[LayerInfo]
                 ) -> list[tuple[int | None, int | None]]:
    """Pairs of indices `(i in A, j in B)`, `None` on the side a layer is missing from, in
    A's order with B's unmatched layers placed where the alignment puts them.

    >>> match_layers(layer_infos(m), layer_infos(m))[:2]  # doctest: +SKIP
    [(0, 0), (1, 1)]
    """
    index_b = {info.path: j for j, info in enumerate(infos_b)}
    pairs: dict[int, int] = {}
    for i, info in enumerate(infos_a):
        j = index_b.get(info.path)
        if j is not None:
            pairs[i] = j
    left_a = [i for i in range(len(infos_a)) if i not in pairs]
    used_b = set(pairs.values())
    left_b = [j for j in range(len(infos_b)) if j not in used_b]
    if left_a and left_b:
        matcher = difflib.SequenceMatcher(None, [infos_a[i].cls for i in left_a],
                                          [infos_b[j].cls for j in left_b], autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                pairs[left_a[block.a + k]] = left_b[block.b + k]
    # Walk A in order, inserting B's unmatched layers before the next matched B layer.
    unmatched_b = sorted(set(range(len(infos_b))) - set(pairs.values()))
    out: list[tuple[int | None, int | None]] = []
    ub = 0
    for i in range(len(infos_a)):
        j = pairs.get(i)
        if j is not None:
            while ub < len(unmatched_b) and unmatched_b[ub] < j:
                out.append((None, unmatched_b[ub]))
                ub += 1
        out.append((i, j))
    out.extend((None, j) for j in unmatched_b[ub:])
    return out


def _config(layer: Any) -> dict[str, Any]:
    try:
        cfg = dict(layer.get_config())
    except (NotImplementedError, TypeError, AttributeError):
        return {}
    return {k: v for k, v in cfg.items() if k not in _IGNORED_KEYS}


def _changed_keys(a: LayerInfo, b: LayerInfo) -> list[str]:
    if getattr(a.layer, "layers", None) and getattr(b.layer, "layers", None):
        return []  # a nested model's config is its inner layers, which have rows of their own
    ca, cb = _config(a.layer), _config(b.layer)
    return sorted(k for k in set(ca) | set(cb) if repr(ca.get(k)) != repr(cb.get(k)))


def architecture_diff(model_a: Any, model_b: Any) -> pd.DataFrame:
    """Layer-by-layer differences between two models.

    Args:
        model_a: a `keras.Model` or `LoadedModel` (the "before").
        model_b: another one (the "after").

    Returns:
        One row per layer of either model, columns `DIFF_COLUMNS`: `status` (`added`,
        `removed`, `changed`, `same`), the paths on each side (`""` where missing), `class`
        (`"A -> B"` when it differs), `changed_keys` (config keys that differ, comma
        separated), output shapes and parameter counts. A model against itself is all `same`.

    Example:

    >>> diff = architecture_diff(loaded, loaded)  # doctest: +SKIP
    >>> set(diff.status)  # doctest: +SKIP
    {'same'}
    """
    infos_a, infos_b = layer_infos(model_a), layer_infos(model_b)
    rows = []
    for i, j in match_layers(infos_a, infos_b):
        a = infos_a[i] if i is not None else None
        b = infos_b[j] if j is not None else None
        if a is not None and b is not None:
            keys = _changed_keys(a, b)
            same = (a.cls == b.cls and not keys and a.shape == b.shape and a.params == b.params)
            status = "same" if same else "changed"
            cls = a.cls if a.cls == b.cls else f"{a.cls} -> {b.cls}"
        else:
            keys = []
            status = "removed" if b is None else "added"
            cls = (a or b).cls  # type: ignore[union-attr]
        rows.append({
            "status": status, "layer_a": a.path if a else "", "layer_b": b.path if b else "",
            "class": cls, "changed_keys": ", ".join(keys),
            "shape_a": a.shape if a else "", "shape_b": b.shape if b else "",
            "params_a": a.params if a else 0, "params_b": b.params if b else 0,
        })
    return pd.DataFrame(rows, columns=DIFF_COLUMNS)
