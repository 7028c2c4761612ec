"""Keras' load errors translated into insight's, naming the real cause.

Keras says "Could not locate class 'system'" where the file names `os.system`; the user
should read that the file tries to run commands, not that a custom class is missing.

Example:

>>> from insight.model.keras_errors import translate
>>> err = translate(ValueError("Could not locate class 'Swish'"), "m.keras")
>>> type(err).__name__, err.names
('CustomObjectError', ['Swish'])
"""

from __future__ import annotations

import re

from insight.errors import CustomObjectError, ModelLoadError, UnsafeModelError
from insight.model.preflight import Preflight

__all__ = ["translate", "UNSAFE_HINT"]

UNSAFE_HINT = ("Only if you trust the file's author: pass --unsafe (`insight serve MODEL "
               "--unsafe`), or `insight.load_model(path, safe_mode=False)` in Python.")

_LOCATE = re.compile(r"Could not locate (?:class|function) '([^']+)'")
_UNKNOWN = re.compile(r"Unknown (?:layer|object|class|function)[^']*'([^']+)'")
_NON_MODELING = re.compile(r"Cannot deserialize `([^`]+)` because it is not a modeling")
_NOT_SAVEABLE = re.compile(r"Could not deserialize '([^']+)' because it is not a KerasSaveable")
_CONFIG_MODULE = re.compile(r"""['"]module['"]: ['"]([^'"]+)['"]""")


def translate(exc: BaseException, shown: str, report: Preflight | None = None
               ) -> ModelLoadError:
    """Map an exception from Keras to an insight error naming the real cause (what Keras
    refused, and what the preflight found in the file)."""
    from insight.model.config_scan import is_dangerous_name

    chain, cur = [], exc
    while cur is not None and len(chain) < 20:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    text = "\n".join(f"{type(e).__name__}: {e}" for e in chain)
    received = f"path={shown!r}"
    refused = _NON_MODELING.search(text) or _NOT_SAVEABLE.search(text)
    if refused:
        return UnsafeModelError(
            f"Keras refused {refused.group(1)}: the model config names it, and it is not a "
            "model part (a layer, an activation, a loss...). This is how crafted model files "
            "run code.", "Check where the file comes from.", received,
            names=[refused.group(1)])
    name = _LOCATE.search(text) or _UNKNOWN.search(text)
    module = next((m for m in _CONFIG_MODULE.findall(text) if is_dangerous_name(m)), None)
    if name and module:
        return UnsafeModelError(
            f"The model config names {module}.{name.group(1)}, from a module that runs "
            "commands or code; Keras refused to import it.",
            "Check where the file comes from.", received,
            names=[f"{module}.{name.group(1)}"])
    if name:
        return CustomObjectError(
            f"The model uses a custom class that Keras cannot find: {name.group(1)}.",
            "Pass the Python file that defines it: --custom-objects layers.py.",
            received,
            names=[name.group(1)],
        )
    if "lambda" in text.lower() and "safe_mode" in text:
        where = f": {', '.join(report.lambda_layers)}" if report and report.lambda_layers else ""
        return UnsafeModelError(
            f"Keras refused a Lambda layer in safe mode{where}.", UNSAFE_HINT, received)
    if any(isinstance(e, MemoryError) for e in chain):
        return ModelLoadError("The model is too large to load in memory.", "", received)
    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    found = [f for f in report.findings() if not f.startswith("No Lambda")] if report else []
    if found:  # the file holds something unusual: say it rather than "damaged"
        return ModelLoadError(
            f"Keras could not build the model from this file: {type(exc).__name__}: {first}. "
            f"What insight found in the file: {' '.join(found)}",
            "Check where the file comes from; run with --debug for the traceback.",
            received,
        )
    return ModelLoadError(
        f"Keras could not build the model from this file: {type(exc).__name__}: {first}",
        "The file may be damaged or need a newer Keras; run with --debug for the traceback.",
        received,
    )
