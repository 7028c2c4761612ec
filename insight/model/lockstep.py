"""A Keras load cut into steps, so that the server can follow the sandboxed child step by step.

The isolated loader (`insight.model.loading`, `insight.model.sandbox`) lets the server run
a part of a load only once the child has run the same part within its limits. With whole
phases (build the model, read the weights) the server's build waits for the child's whole
build: a cache miss costs the child's load plus the server's. Here each Keras variable
created (`Variable.__init__`) and each variable assigned (`Variable.assign`: the weights
read one by one) is a *step*. The child reports each step it reaches; the server, at its own
step `k`, waits until the child has reached step `k + 1`: the code between two steps
(deserializing layers, allocating a variable, reading its values from the HDF5 file) has
then run in the child first, without a limit hit, a crash or a blocked call.

Both processes load the same file with the same code, so their steps are the same ones. If
they ever differed, the server would only wait longer: the child's end of the weights phase
opens the rest, which is where the whole-phase loader opens it too.

Only the thread that entered `stepping()` counts steps: other sessions of a server loading
other models meanwhile pass freely.

Example:

>>> seen = []
>>> import keras
>>> with stepping(lambda: seen.append("step")):
...     _ = keras.Variable([1.0, 2.0]).assign([3.0, 4.0])
>>> seen
['step', 'step']
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar

__all__ = ["stepping", "available"]

_STEP: ContextVar[Callable[[], None] | None] = ContextVar("insight_lockstep", default=None)
_INSTALL = threading.Lock()
_installed: bool | None = None


def _install() -> bool:
    """Wrap Keras' `Variable.__init__` and `Variable.assign` once per process."""
    global _installed
    with _INSTALL:
        if _installed is None:
            try:
                from keras.src.backend.common.variables import Variable
            except ImportError:
                _installed = False
                return False
            for name in ("__init__", "assign"):
                setattr(Variable, name, _stepped(getattr(Variable, name)))
            _installed = True
    return _installed


def _stepped(method):
    def wrapper(self, *args, **kwargs):
        step = _STEP.get()
        if step is not None:
            step()
        return method(self, *args, **kwargs)

    wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
    wrapper.__wrapped__ = method
    return wrapper


def available() -> bool:
    """Whether this Keras has the steps (its `Variable` class where expected)."""
    return _install()


@contextlib.contextmanager
def stepping(on_step: Callable[[], None]) -> Iterator[None]:
    """Call `on_step()` before each step of the Keras work done in this thread meanwhile.

    Args:
        on_step: called before each variable is created or assigned; it may block (the
            server waiting for the child) or raise (the child's verdict was a refusal).
    """
    _install()
    token = _STEP.set(on_step)
    try:
        yield
    finally:
        _STEP.reset(token)
