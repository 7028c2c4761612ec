"""The first contact with a model file, in a child process with limits.

`safe_mode` and the preflight are filters, not a wall: a file can crash TensorFlow, hang it
or exhaust memory. `check_in_child` runs the preflight, Keras' deserialization and a first
forward pass in a fresh process (`insight.model.sandbox_child`) with

- a wall-clock timeout (`LoadLimits.timeout_s`; TensorFlow's own start is not counted),
- a memory limit (`LoadLimits.memory_bytes`): `RLIMIT_DATA`, enforced at every allocation,
  not `RLIMIT_AS` (TensorFlow maps ~1.8 GB of address space for its libraries alone); the
  parent also watches the child's resident memory, to name the limit when an allocator aborts,
- no secrets in its environment (`scrubbed_env`), no core dumps, its own session.

A crash, hang or bomb costs the child; the caller gets a `LoadLimitError` ("took more than
60 s", "needed more than 8 GB") or a `LoaderCrashError` ("signal 11 (SIGSEGV)"), and loads
the file only once the child has passed (`load_model(path, isolate=True)`; the CLI and app
do). The answer is a line of JSON, never a pickle. A warm server calls `prestart()`: a child
that has imported Keras waits for the next file.

Example:

>>> limits = LoadLimits.parse("30", "4G")
>>> limits.timeout_s, limits.memory_text
(30.0, '4 GB')
>>> report = check_in_child("sample_models/digits_cnn/model.keras")  # doctest: +SKIP
>>> report.format  # doctest: +SKIP
'keras'
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from insight import errors
from insight.errors import LoaderCrashError, LoadLimitError, ModelLoadError, UsageError
from insight.model.limits import LoadLimits
from insight.model.preflight import Preflight, preflight

__all__ = ["LoadLimits", "check_in_child", "start_check", "PendingCheck", "prestart",
           "spare_ready", "stop_spare", "scrubbed_env", "passed_key", "passed_before",
           "remember_passed", "forget_passed"]

CHILD = "insight.model.sandbox_child"
# What Python, TensorFlow and CUDA read; everything else (tokens, cloud keys) stays out.
_KEEP = {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "USER", "LOGNAME",
         "VIRTUAL_ENV", "LD_LIBRARY_PATH", "XLA_FLAGS", "OMP_NUM_THREADS", "SSL_CERT_FILE"}
_KEEP_PREFIXES = ("LC_", "PYTHON", "TF_", "KERAS_", "CUDA_", "NVIDIA_", "MKL_", "HDF5_")
_IMPORT_LIMIT_S = 300.0  # TensorFlow's start in the child: trusted code, but never forever
_MAX_ANSWER = 1 << 20  # bytes of JSON a child may send back
_POLL_S = 0.05


def scrubbed_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a loader child gets: `env` (default: `os.environ`) without secrets.

    >>> sorted(scrubbed_env({"PATH": "/bin", "AWS_SECRET_ACCESS_KEY": "x", "TF_X": "1"}))
    ['PATH', 'PYTHONPATH', 'TF_CPP_MIN_LOG_LEVEL', 'TF_X']
    """
    env = os.environ if env is None else env
    out = {k: v for k, v in env.items() if k in _KEEP or k.startswith(_KEEP_PREFIXES)}
    # The child must import this very insight, installed or run from a checkout.
    here = str(Path(__file__).resolve().parents[2])
    out["PYTHONPATH"] = os.pathsep.join([here, *filter(None, [out.get("PYTHONPATH")])])
    out.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return out


def _spawn(spare: bool) -> subprocess.Popen:
    read, write = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", CHILD, str(write)] + (["--spare"] if spare else []),
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=None if os.environ.get("INSIGHT_SANDBOX_STDERR") else subprocess.DEVNULL,
            pass_fds=(write,), env=scrubbed_env(), start_new_session=True,
        )
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)
    proc.answer_fd = read  # type: ignore[attr-defined]
    return proc


_SPARE: list[subprocess.Popen] = []
_SPARE_LOCK = threading.Lock()
# Files the child passed in this process, by content: the server has loaded each of them
# once already, so loading the same bytes again (a model evicted from the app's cache) needs
# no second check.
_PASSED: set[tuple] = set()


def passed_key(path: str | Path, safe_mode: bool, custom_objects: str | Path | None
               ) -> tuple | None:
    """What identifies a check: the file's and the custom objects file's content, and the
    safe mode (`None` where a file cannot be hashed)."""
    from insight.results import file_hash

    try:
        co = file_hash(custom_objects) if custom_objects is not None else None
        return (file_hash(path), bool(safe_mode), co)
    except (OSError, TypeError):
        return None


def passed_before(key: tuple | None) -> bool:
    """Whether the child passed a file of this `passed_key` in this process."""
    return key is not None and key in _PASSED


def forget_passed() -> None:
    """Check every file in the child again, including those it passed already."""
    _PASSED.clear()


def remember_passed(key: tuple | None) -> None:
    """Note that the child passed the file of `key` (see `passed_before`)."""
    if key is not None:
        if len(_PASSED) > 1024:
            _PASSED.clear()
        _PASSED.add(key)


def prestart() -> None:
    """Start a child that imports Keras now and waits for the next `start_check` (a warm
    server calls this, so a model cache miss does not pay TensorFlow's start again)."""
    with _SPARE_LOCK:
        if _SPARE and _SPARE[0].poll() is None:
            return
        _SPARE[:] = [_spawn(spare=True)]


def stop_spare() -> None:
    """Stop the `prestart()` child, if any (it also exits by itself with this process)."""
    with _SPARE_LOCK:
        procs, _SPARE[:] = list(_SPARE), []
    for proc in procs:
        PendingCheck(proc, "", LoadLimits())._kill()


def spare_ready(timeout: float) -> bool:
    """Wait up to `timeout` seconds for the `prestart()` child to have imported Keras."""
    with _SPARE_LOCK:
        proc = _SPARE[0] if _SPARE else None
        if proc is None or getattr(proc, "ready", False):
            return proc is not None
        fd = proc.answer_fd  # type: ignore[attr-defined]
        if select.select([fd], [], [], timeout)[0]:
            proc.ready = os.read(fd, len(b'{"stage": "ready"}\n')) != b""  # type: ignore
        return bool(getattr(proc, "ready", False))


def _take_spare() -> subprocess.Popen | None:
    with _SPARE_LOCK:
        proc = _SPARE.pop() if _SPARE else None
    if proc is not None and proc.poll() is not None:
        os.close(proc.answer_fd)  # type: ignore[attr-defined]
        return None
    return proc


def start_check(
    path: str | Path, *, safe_mode: bool = True, custom_objects: str | Path | None = None,
    limits: LoadLimits | None = None, load: bool = True,
) -> PendingCheck:
    """Start checking `path` in a child and return at once (see `check_in_child`); the
    caller can import TensorFlow meanwhile, then call `.result()`."""
    if custom_objects is not None and not isinstance(custom_objects, (str, Path)):
        raise UsageError("The isolated loader takes custom objects as a .py file only: a "
                         "mapping of classes cannot be sent to another process.",
                         "Pass the file's path, or load with isolate=False.",
                         f"custom_objects={type(custom_objects).__name__}")
    limits = limits or LoadLimits()
    # As given (the child shares this cwd), so its messages name the path the user typed.
    request = {"path": str(path), "safe_mode": bool(safe_mode),
               "custom_objects": str(custom_objects) if custom_objects is not None else None,
               "memory_bytes": limits.memory_bytes, "load": load}
    proc = (_take_spare() if load else None) or _spawn(spare=False)
    try:
        proc.stdin.write(json.dumps(request).encode() + b"\n")
        proc.stdin.close()
    except BrokenPipeError:
        pass  # the child died already: `result()` says how
    return PendingCheck(proc, str(path), limits)


def check_in_child(
    path: str | Path, *, safe_mode: bool = True, custom_objects: str | Path | None = None,
    limits: LoadLimits | None = None, load: bool = True,
) -> Preflight:
    """Preflight, safety check, Keras load and a first forward pass of `path` in a child
    process with limits; the file's preflight (read here, once the child has passed).

    Args:
        path: the model file or directory.
        safe_mode: refuse files that would run code, as `insight.load_model`. Defaults to
            `True`.
        custom_objects: a `.py` file with the model's custom classes (run in the child).
            Defaults to `None`.
        limits: time and memory limits. Defaults to `LoadLimits()` (60 s, 8 GB).
        load: `False` runs only the static preflight in the child (no TensorFlow, no safety
            verdict): what a page shows before loading. Defaults to `True`.

    Returns:
        The `Preflight` of the file.

    Raises:
        LoadLimitError: the child ran past the time or memory limit.
        LoaderCrashError: the child died (a signal, an exit).
        ModelLoadError: what `insight.load_model` raises for this file, from the child.
    """
    start_check(path, safe_mode=safe_mode, custom_objects=custom_objects, limits=limits,
                load=load).result()
    return preflight(path)  # the child read this file within the limits


class PendingCheck:
    """A check running in a child; `result()` waits for it (see `check_in_child`)."""

    def __init__(self, proc: subprocess.Popen, shown: str, limits: LoadLimits) -> None:
        self.proc, self.shown, self.limits = proc, shown, limits
        self.stage = "start"
        self.steps = 0  # the Keras steps the child has reached (`insight.model.lockstep`)
        self.failure: ModelLoadError | None = None  # the verdict, once it is a refusal
        self.peak_rss = 0
        self._buf = b""
        self._done: dict | None = None
        self._started = self._import_started = time.monotonic()
        self._budget = limits.timeout_s

    def preflight_passed(self) -> None:
        """Wait until the child has read the file statically and found it safe (raises
        its error otherwise): the moment to start importing TensorFlow here."""
        self._wait(lambda: self._done is not None or self.stage not in ("start", "preflight"))

    def model_built(self) -> None:
        """Wait until the child has built the model from the file's config (raises its error
        otherwise): the moment to build it here, while the child reads the weights."""
        self._wait(lambda: self._done is not None or self.stage in ("weights", "run"))

    def reached(self, step: int) -> None:
        """Wait until the child has reached Keras step `step` of its load, or has read the
        weights (every step done): the server may then run up to the same step."""
        self._wait(lambda: self._done is not None or self.steps >= step or self.stage == "run")

    def weights_loaded(self) -> None:
        """Wait until the child has read the weights too: the moment to read them here,
        while the child runs the first forward pass."""
        self._wait(lambda: self._done is not None or self.stage == "run")

    def result(self) -> None:
        """Wait for the verdict; returns when the file passed.

        Raises:
            LoadLimitError, LoaderCrashError, ModelLoadError: see `check_in_child`.
        """
        self._wait(lambda: self._done is not None)

    def _wait(self, enough) -> None:
        """Raises the refusal again on every later call: a caller whose code caught it once
        (Keras wraps errors raised in its steps) never runs past it."""
        if self.failure is None:
            try:
                self._read_until(enough)
            except ModelLoadError as exc:
                self.failure = exc
        if self.failure is not None:
            raise self.failure

    def _read_until(self, enough) -> None:
        fd = self.proc.answer_fd  # type: ignore[attr-defined]
        while not enough():
            now = time.monotonic()
            if self.stage == "import":
                deadline = self._import_started + _IMPORT_LIMIT_S
            else:
                deadline = self._started + self._budget
            if now > deadline:
                self._kill()
                raise self._time_error()
            ready, _, _ = select.select([fd], [], [], min(_POLL_S, max(0.0, deadline - now)))
            self._watch_memory()
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk or len(self._buf) + len(chunk) > _MAX_ANSWER:
                    self._finish_dead()
                    return
                self._buf += chunk
                while b"\n" in self._buf:
                    line, self._buf = self._buf.split(b"\n", 1)
                    self._message(line)
                    if self._done is not None:
                        self._kill(wait=False)
                        return

    def _message(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        if isinstance(msg.get("step"), int):
            self.steps = msg["step"]
            return
        stage = msg.get("stage")
        if stage == "import":
            self._budget -= time.monotonic() - self._started  # TensorFlow's start is free
            self._import_started = time.monotonic()
        elif stage in ("load", "weights", "run") and self.stage == "import":
            self._started = time.monotonic()
        if stage in _STAGES:
            self.stage = stage
        if "ok" in msg or "error" in msg:
            self._done = msg
            if "error" in msg:
                self._reap()
                raise self._error(msg)

    def _watch_memory(self) -> None:
        try:
            with open(f"/proc/{self.proc.pid}/status", "rb") as f:
                status = f.read()
        except OSError:
            return
        found = re.search(rb"VmRSS:\s+(\d+) kB", status)
        rss = int(found.group(1)) * 1024 if found else 0
        self.peak_rss = max(self.peak_rss, rss)
        if rss > self.limits.memory_bytes:  # the rlimit did not hold (an odd kernel)
            self._kill()
            raise self._memory_error()

    def _kill(self, *, wait: bool = True) -> None:
        """Stop the child and whatever it started. Without `wait` (after the verdict), its
        exit (unmapping TensorFlow's memory: a tenth of a second) is left to a thread."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if wait:
            self._reap()
        else:
            self._close()
            threading.Thread(target=self.proc.wait, daemon=True).start()

    def _reap(self) -> None:
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self) -> None:
        fd = getattr(self.proc, "answer_fd", None)
        if fd is not None:
            os.close(fd)
            self.proc.answer_fd = None  # type: ignore[attr-defined]

    def _finish_dead(self) -> None:
        try:  # the answer channel closed: the child is exiting, or closed it and lingers
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._kill()
            raise LoaderCrashError(
                f"The loader stopped answering while {_STAGES[self.stage]}; it was stopped "
                "and the model was not loaded.", "The file is damaged or crafted; load it "
                "only if you trust it.", f"path={self.shown!r}", signal=None) from None
        self._reap()
        code = self.proc.returncode
        near = self.peak_rss > 0.8 * self.limits.memory_bytes
        if code is not None and code < 0:
            number = -code
            try:
                name = signal.Signals(number).name
            except ValueError:
                name = "unknown signal"
            if near:  # a native allocator aborted at the limit, or the OOM killer struck
                raise self._memory_error()
            raise LoaderCrashError(
                f"The loader crashed: signal {number} ({name}) while {_STAGES[self.stage]}; "
                "the model was not loaded and this process is unaffected.",
                "The file is damaged or crafted to crash TensorFlow; load it only if you "
                "trust it, in a separate Python session.",
                f"path={self.shown!r}", signal=number)
        if near:
            raise self._memory_error()
        raise LoaderCrashError(
            f"The loader exited with status {code} while {_STAGES[self.stage]} without an "
            "answer; the model was not loaded.",
            "Something in the file or the --custom-objects file ended the process (sys.exit, "
            "os._exit); check them.", f"path={self.shown!r}", signal=None)

    def _time_error(self) -> LoadLimitError:
        if self.stage == "import":
            return LoadLimitError(
                f"TensorFlow took more than {_IMPORT_LIMIT_S:.0f} s to start in the loader.",
                "The machine is overloaded; try again.", f"path={self.shown!r}", limit="time")
        return LoadLimitError(
            f"The model took more than {self.limits.timeout_s:g} s to load "
            f"(stopped while {_STAGES[self.stage]}).",
            "If the file is trusted and just large, raise the limit with --load-timeout "
            "SECONDS (or INSIGHT_LOAD_TIMEOUT).", f"path={self.shown!r}", limit="time")

    def _memory_error(self) -> LoadLimitError:
        return LoadLimitError(
            f"Loading the model needed more than {self.limits.memory_text} of memory "
            f"(stopped while {_STAGES[self.stage]}).",
            "A small file that needs this much is crafted or broken; if it is trusted and "
            "the model really is that large, raise the limit with --load-memory SIZE (e.g. "
            "16G, or INSIGHT_LOAD_MEMORY).", f"path={self.shown!r}", limit="memory")

    def _error(self, msg: dict) -> ModelLoadError:
        if msg.get("error") == "memory":
            return self._memory_error()
        cls = getattr(errors, str(msg.get("error")), None)
        if not (isinstance(cls, type) and issubclass(cls, ModelLoadError)):
            cls = ModelLoadError  # only insight's own classes, whatever the child says
        text = {k: str(msg.get(k, ""))[:2000] for k in ("what", "fix", "received")}
        if cls in (errors.UnsafeModelError, errors.CustomObjectError):
            names = [str(n)[:200] for n in msg.get("names", [])][:100]
            return cls(text["what"], text["fix"], text["received"], names=names)
        if cls in (LoadLimitError, LoaderCrashError):
            cls = ModelLoadError
        return cls(text["what"], text["fix"], text["received"])


_STAGES = {"start": "starting", "preflight": "reading the file (preflight)",
           "import": "starting TensorFlow", "load": "building the model (Keras)",
           "weights": "reading the weights (Keras)",
           "run": "running a first forward pass"}
