"""The whole error tree of insight.

Every error insight raises on purpose is an `InsightError`. Its text is safe to show to a
user as it is (the CLI prints it after ``error:``, the app inside ``st.error``): it says what
happened, what to do, and ends with ``Received: ...``.

```
InsightError
├── ModelLoadError            the model file cannot be read or loaded
│   ├── UnsupportedModelError    not a format insight reads (or a remote URL)
│   ├── UnsafeModelError         loading would run code from the file; refused in safe mode
│   ├── CustomObjectError        a custom class is missing, or the --custom-objects file fails
│   ├── LoadLimitError           the isolated loader ran past its time or memory limit
│   └── LoaderCrashError         the isolated loader died (a signal, an exit) on this file
├── DataError                 inputs that cannot be read or do not fit the model
├── StorageError              a remote path (s3://, gs://) cannot be listed or read
├── CompileError              XLA cannot compile the model (an op without an XLA kernel)
└── UsageError                a bad argument: unknown panel, unknown layer, bad option value
```

Example:

>>> from insight.errors import InsightError, ModelLoadError
>>> err = ModelLoadError("The file is empty.", fix="Save the model again.",
...                      received="path='m.keras'")
>>> print(err)
The file is empty. Save the model again. Received: path='m.keras'
>>> isinstance(err, InsightError)
True
"""

from __future__ import annotations

__all__ = [
    "InsightError",
    "ModelLoadError",
    "UnsupportedModelError",
    "UnsafeModelError",
    "CustomObjectError",
    "LoadLimitError",
    "LoaderCrashError",
    "DataError",
    "StorageError",
    "CompileError",
    "UsageError",
]


class InsightError(Exception):
    """Base of every error insight raises on purpose.

    Args:
        what: what happened, one or two sentences.
        fix: what the user can do about it. Defaults to `""`.
        received: the offending value(s), e.g. ``"path='model.keras'"``. Defaults to `""`.
    """

    def __init__(self, what: str, fix: str = "", received: str = "") -> None:
        self.what = what
        self.fix = fix
        self.received = received
        parts = [what.strip()]
        if fix:
            parts.append(fix.strip())
        if received:
            parts.append(f"Received: {received}")
        super().__init__(" ".join(parts))


class ModelLoadError(InsightError):
    """The model file cannot be read or loaded (missing, empty, corrupt, not a model)."""


class UnsupportedModelError(ModelLoadError):
    """The path is not a format insight reads: a remote URL, a weights-only file, a `.txt`."""


class UnsafeModelError(ModelLoadError):
    """Loading would run code stored in the file (a Lambda layer, a SavedModel graph, a
    reference to a non-Keras module); refused unless the user opts out of safe mode."""

    def __init__(self, what: str, fix: str = "", received: str = "", *, names=()) -> None:
        self.names = list(names)
        super().__init__(what, fix, received)


class CustomObjectError(ModelLoadError):
    """A custom class the model needs is not available, or the `--custom-objects` file
    given to provide it cannot be run."""

    def __init__(self, what: str, fix: str = "", received: str = "", *, names=()) -> None:
        self.names = list(names)
        super().__init__(what, fix, received)


class LoadLimitError(ModelLoadError):
    """Loading the file in the isolated loader (`insight.model.sandbox`) took longer than
    `--load-timeout` or needed more memory than `--load-memory`; the loader was stopped and
    nothing was loaded in this process. `limit` is `"time"` or `"memory"`."""

    def __init__(self, what: str, fix: str = "", received: str = "", *, limit: str = "") -> None:
        self.limit = limit
        super().__init__(what, fix, received)


class LoaderCrashError(ModelLoadError):
    """The isolated loader process died on the file (a signal such as SIGSEGV, or an exit);
    nothing was loaded in this process. `signal` is the signal number, or `None`."""

    def __init__(self, what: str, fix: str = "", received: str = "", *,
                 signal: int | None = None) -> None:
        self.signal = signal
        super().__init__(what, fix, received)


class DataError(InsightError):
    """Inputs that cannot be read (a missing or malformed file) or do not fit the model (shape,
    dtype, number of inputs)."""


class StorageError(InsightError):
    """A remote path (`s3://...`, `gs://...`) cannot be listed or read: the bucket or key does
    not exist, the credentials were refused, the connection dropped, or the filesystem's
    package (`s3fs`, `gcsfs`) is not installed. `reason` is `"missing"`, `"denied"`,
    `"connection"`, `"package"` or `"other"`."""

    def __init__(self, what: str, fix: str = "", received: str = "", *,
                 reason: str = "other") -> None:
        self.reason = reason
        super().__init__(what, fix, received)


class CompileError(InsightError):
    """XLA cannot compile the model's function: an op without an XLA kernel (strings,
    `tf.py_function`), or shapes that depend on the data."""

    def __init__(self, what: str, fix: str = "", received: str = "", *, ops=()) -> None:
        self.ops = list(ops)
        super().__init__(what, fix, received)


class UsageError(InsightError):
    """A bad argument from the user: an unknown panel, a bad option value, a missing path."""
