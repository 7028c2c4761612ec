"""Two models compared, layer by layer: architecture, weights, representations, predictions.

- `architecture`: `architecture_diff` (added, removed, changed layers) and `match_layers`.
- `weights`: `weight_change`, `weight_changes` (relative change and cosine per layer).
- `cka`: `linear_cka`, `MinibatchCKA`, `cka_matrix` (every layer pair, streamed).
- `predictions`: agreement, confusion between the two, disagreements, per-class accuracy.
- `comparison`: `compare(a, b, x, y) -> Comparison`, all of the above on one pair.

Example:

>>> import insight
>>> cmp = insight.compare("a.keras", "b.keras", x)  # doctest: +SKIP
>>> cmp.architecture_diff().status.value_counts()  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

# Names resolve on first use (PEP 562): importing the package does not import TensorFlow.
_LAZY = {
    "linear_cka": "insight.compare.cka",
    "cka": "insight.compare.cka",
    "MinibatchCKA": "insight.compare.cka",
    "cka_matrix": "insight.compare.cka",
    "weight_change": "insight.compare.weights",
    "weight_changes": "insight.compare.weights",
    "architecture_diff": "insight.compare.architecture",
    "match_layers": "insight.compare.architecture",
    "compare": "insight.compare.comparison",
    "Comparison": "insight.compare.comparison",
}

__all__ = ["Comparison", "MinibatchCKA", "architecture_diff", "cka", "cka_matrix", "compare",
           "linear_cka", "match_layers", "weight_change", "weight_changes"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'insight.compare' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _CallablePackage(types.ModuleType):
    """`insight.compare` is both this package and the `compare` function: importing any
    submodule binds the package to the `insight.compare` attribute, so the package itself
    must answer `insight.compare(a, b, x)`."""

    def __call__(self, *args, **kwargs):
        from insight.compare.comparison import compare

        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage


if TYPE_CHECKING:
    from insight.compare.architecture import architecture_diff, match_layers
    from insight.compare.cka import MinibatchCKA, cka, cka_matrix, linear_cka
    from insight.compare.comparison import Comparison, compare
    from insight.compare.weights import weight_change, weight_changes
