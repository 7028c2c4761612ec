"""The loader child of `insight.model.sandbox`: `python -m insight.model.sandbox_child FD`.

It reads one request (a JSON line on stdin: path, safe mode, custom objects file, memory
limit), lowers its own limits (`RLIMIT_DATA`, `RLIMIT_FSIZE`, no core dumps), then runs what
the parent must not risk: the preflight, Keras' deserialization (`insight.load_model`) and a
first forward pass on zeros. It reports each stage and the verdict as JSON lines on file
descriptor `FD`. With `--spare` it starts importing Keras (in a thread) before the request
comes: a warm server's next check starts there, and the preflight of a request that comes
meanwhile does not wait for TensorFlow.

In safe mode it also blocks, with an audit hook (PEP 578), what no model load needs: starting
processes, network connections, loading native code through ctypes, signals to other
processes (the server is one), and writing, moving or deleting files anywhere but a scratch
folder of its own. A file that tries any of it is refused as unsafe, so a
`safe_mode` bypass shows up here before the parent loads the file.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
from typing import Any

from insight.model import lockstep

__all__ = ["main"]

_BLOCKED = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
            "subprocess.Popen", "pty.spawn", "socket.connect", "socket.bind",
            "socket.sendto", "ctypes.dlopen", "ctypes.dlsym", "webbrowser.open")
# Loading a model reads; a payload that "only" writes a file (a quiet safe_mode bypass: a
# planted script, an edited ~/.bashrc) is caught here, before the server loads the file.
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_FS_EVENTS = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown",
              "os.symlink", "os.link", "os.truncate", "os.utime", "shutil.rmtree",
              "shutil.move", "shutil.copyfile", "shutil.copytree")
_MEMORY_WORDS = ("OOM when allocating", "bad_alloc", "Cannot allocate memory",
                 "ResourceExhausted", "Unable to allocate")


class _Blocked(Exception):
    pass


def _send(out, **msg: Any) -> None:
    out.write(json.dumps(msg, default=str).encode() + b"\n")


def _is_memory(exc: BaseException) -> bool:
    seen, cur = 0, exc
    while cur is not None and seen < 20:
        if isinstance(cur, MemoryError) or any(
                w in f"{type(cur).__name__}: {str(cur)[:2000]}" for w in _MEMORY_WORDS):
            return True
        cur, seen = cur.__cause__ or cur.__context__, seen + 1
    return False


def _writes(event: str, args: tuple, scratch: str) -> bool:
    """Whether an audit event changes the file system outside the child's scratch folder."""
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        if isinstance(path, int):
            return False  # an already open descriptor
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS)
        targets = [path] if writing else []
    elif event in _FS_EVENTS:
        targets = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
    else:
        return False
    for target in targets:
        try:
            where = os.path.realpath(os.fsdecode(target))
        except (TypeError, ValueError):
            return True
        if not (where == scratch or where.startswith(scratch + os.sep)):
            return True
    return False


def _audit(tripped: list[str], scratch: str):
    me = os.getpid()

    def hook(event: str, args: tuple) -> None:
        if event in ("os.kill", "os.killpg") and args and args[0] in (me, 0):
            return  # a process may still crash itself
        if event.startswith(_BLOCKED) or event in ("os.kill", "os.killpg"):
            tripped.append(event)
            raise _Blocked(f"blocked {event}")
        if _writes(event, args, scratch):
            tripped.append("write a file")
            raise _Blocked(f"blocked {event}")

    return hook


def _warm_up(out) -> None:
    """Import Keras and build and call a tiny model: a process's first model pays for
    TensorFlow's lazy set-up, which a spare child should pay before a file arrives. Runs in
    a thread, so that a request that comes meanwhile gets its preflight at once."""
    import keras
    import numpy as np

    # What a request imports first, so that its preflight starts at once.
    import insight.model.loading  # noqa: F401
    import insight.model.preflight  # noqa: F401

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3),
                              keras.layers.BatchNormalization(),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    model(np.zeros((1, 8, 8, 3), "float32"), training=False)
    # What TensorFlow and Keras allocated so far lives as long as the process: moved out of
    # the collector's reach, the load's full collections no longer walk it (0.3 s of a
    # MobileNetV2 build otherwise).
    gc.collect()
    gc.freeze()
    _send(out, stage="ready")


def _forward(model: Any) -> None:
    """One call on zeros shaped like the inputs (batch 1, unknown sizes 8)."""
    import numpy as np

    inputs = []
    for spec in getattr(model, "inputs", None) or []:
        shape = tuple(1 if i == 0 else (d or 8) for i, d in enumerate(spec.shape))
        dtype = str(getattr(spec.dtype, "name", spec.dtype))
        inputs.append(np.full(shape, "", dtype=object) if dtype == "string"
                      else np.zeros(shape, dtype=dtype))
    if not inputs:
        return  # a subclassed model without known inputs: deserialization was the check
    try:
        model(inputs[0] if len(inputs) == 1 else inputs, training=False)
    except Exception as exc:  # a model that needs real data is not a broken file
        if _is_memory(exc):
            raise


def _refuse(out, exc: BaseException, tripped: list[str]) -> None:
    from insight.errors import InsightError

    if tripped:
        _send(out, error="UnsafeModelError",
              what=f"Loading the file in safe mode tried to {tripped[0]} (blocked in the "
                   "isolated loader). A model file has no reason to; this one is crafted to "
                   "run code.",
              fix="Do not load it. Report it to whoever sent it.", received="",
              names=sorted(set(tripped)))
    elif _is_memory(exc):
        _send(out, error="memory")
    elif isinstance(exc, InsightError):
        _send(out, error=type(exc).__name__, what=exc.what, fix=exc.fix,
              received=exc.received, names=getattr(exc, "names", []))
    else:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        _send(out, error="ModelLoadError",
              what=f"The loader failed on this file: {type(exc).__name__}: {first}".rstrip(": "),
              fix="The file is damaged or crafted; re-save the model with Keras.", received="")


def main(argv: list[str]) -> int:
    """Run one check; the verdict goes to the descriptor `argv[0]`."""
    out = os.fdopen(int(argv[0]), "wb", buffering=0)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    importer = None
    if "--spare" in argv:  # the long part starts before the request comes
        importer = threading.Thread(target=_warm_up, args=(out,), daemon=True)
        importer.start()
    line = sys.stdin.buffer.readline(1 << 16)
    if not line:
        return 0  # the parent went away
    req = json.loads(line)
    memory = int(req["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (memory, memory))
    tripped: list[str] = []
    scratch = None
    try:
        from insight.model.loading import check_safety, load_custom_objects, load_preflighted
        from insight.model.preflight import preflight

        _send(out, stage="preflight")
        report = preflight(req["path"])
        if not req["load"]:
            _send(out, ok=True)
            return 0
        if req["custom_objects"] is None:
            check_safety(report, safe_mode=req["safe_mode"])  # fail fast, before TensorFlow
        if importer is None or importer.is_alive():  # not counted in the time limit
            _send(out, stage="import")
            if importer is not None:
                importer.join()
            import keras  # noqa: F401
        _send(out, stage="load")  # the time limit counts from here
        # A short-lived process under a memory limit: cycles wait for its exit instead of
        # costing collections on the way (a third of a first build).
        gc.disable()
        # The user's own file runs before the guard: it is trusted by being given.
        provided = load_custom_objects(req["custom_objects"])
        if req["safe_mode"]:
            # Temporary files go to a folder of the child's own, the only place it may write.
            scratch = os.path.realpath(tempfile.mkdtemp(prefix="insight-loader-"))
            tempfile.tempdir = scratch
            sys.dont_write_bytecode = True  # so any .pyc written from here on is a payload's
            sys.addaudithook(_audit(tripped, scratch))


        def announce(step: str) -> None:
            if step == "built":
                _send(out, stage="weights")
            elif step == "loaded":
                _send(out, stage="run")

        steps = itertools.count(1)

        def step() -> None:
            if not tripped:  # a blocked call stops the server's steps where it happened
                _send(out, step=next(steps))

        with lockstep.stepping(step):
            loaded = load_preflighted(report, safe_mode=req["safe_mode"],
                                      custom_objects=provided or None, at=announce)
        _forward(loaded.model)
        if tripped:  # blocked, and the error swallowed by a broad `except` on the way
            raise _Blocked(tripped[0])
        _send(out, ok=True)
    except BaseException as exc:  # noqa: BLE001  every failure becomes an answer
        _refuse(out, exc, tripped)
        return 1
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)  # no TensorFlow teardown: it can take seconds and has nothing to save
