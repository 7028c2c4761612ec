"""Converting a profile before its page reads it: once, in a child process, with progress.

xprof's C++ conversion of a long profile peaks at gigabytes (a 216 MB, 200-step `.xplane.pb`:
about 4 GB for the overview, more for the trace viewer), and an allocator rarely hands that
back to the system: a server that converted in its own process would keep the peak for good.
`prepare` converts a large profile (over `ISOLATE_BYTES`) in a child process instead
(`python -m insight.profiler.prepare`), which writes insight's disk cache
(`insight.profiler.cache`) and exits; the server then reads the compact results back. Each
stage the child starts comes back as a line, for the page's progress bar.

Example:

>>> from insight.profiler.capture import find_profiles
>>> run = find_profiles("sample_models/digits_cnn/logs")[0]  # doctest: +SKIP
>>> prepare(run, progress=lambda f, stage: print(f"{f:.0%} {stage}"))  # doctest: +SKIP
0% Converting overview_page with xprof (0.1 MB) (1/4)
...
100% Done
>>> is_cached(run)  # doctest: +SKIP
True
"""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from insight.errors import DataError, InsightError
from insight.profiler import cache
from insight.profiler.capture import (
    PAGE_TOOLS,
    ProfileRun,
    find_profiles,
    profile_trace,
    tool_data,
)

__all__ = ["prepare", "is_cached", "ISOLATE_BYTES"]

ISOLATE_BYTES = 32 * 2**20  # past this the conversion's peak is worth a child process
_NAMES = {"trace": "trace.parquet", "trace_viewer": "trace_viewer.pb"}


def is_cached(run: ProfileRun, tools: tuple[str, ...] = PAGE_TOOLS, host: int = 0) -> bool:
    """Whether every one of `tools` of `run` is in the disk cache (`"trace"`: the parsed
    timeline): opening it then converts nothing."""
    try:
        digest = cache.content_hash(run.hosts[host])
    except OSError:
        return False
    return all(cache.entry_path(digest, _NAMES.get(t, f"{t}.json")).is_file() for t in tools)


def _here(run: ProfileRun, tools: tuple[str, ...], progress: Callable[[float, str], None],
          host: int) -> None:
    done = [0]

    def stage(text: str) -> None:
        progress(min(done[0] / len(tools), 0.99), f"{text} ({done[0] + 1}/{len(tools)})")

    with cache.reporting(stage):
        for tool in tools:
            if tool == "trace":
                profile_trace(run, host=host)
            else:
                tool_data(run, tool, host=host)
            done[0] += 1
            _trim()


def _trim() -> None:
    """Hand the memory a conversion freed back to the system (glibc keeps it otherwise)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _in_child(run: ProfileRun, tools: tuple[str, ...],
              progress: Callable[[float, str], None], host: int) -> None:
    cmd = [sys.executable, "-m", "insight.profiler.prepare", str(run.hosts[host]), *tools]
    # xprof logs to stderr freely: a file, not a pipe nobody reads until the end (a full
    # pipe would block the child)
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
        error = None
        try:
            for line in proc.stdout:  # type: ignore[union-attr]
                msg = json.loads(line) if line.startswith("{") else {}
                if "stage" in msg:
                    progress(msg["fraction"], msg["stage"])
                elif "error" in msg:
                    error = msg["error"]
        except BaseException:
            # the page was left (Streamlit stops its script): not waiting for xprof; the
            # child finishes the tool it converts (kept in the cache), then its next line
            # finds the pipe closed and it exits
            proc.stdout.close()  # type: ignore[union-attr]
            raise
        proc.wait()
        log.seek(0)
        stderr = log.read()
    if error is not None:
        raise DataError(error["what"], error["fix"], error["received"])
    if proc.returncode != 0:
        raise DataError(f"The profile converter stopped (exit code {proc.returncode}), "
                        "probably out of memory.", "Close other programs, or open a shorter "
                        "profile.", f"path={str(run.hosts[host])!r}, "
                        f"stderr={stderr.strip()[-300:]!r}")


def prepare(run: ProfileRun, tools: tuple[str, ...] = PAGE_TOOLS,
            progress: Callable[[float, str], None] | None = None, host: int = 0,
            isolate: bool | None = None) -> None:
    """Convert `tools` of `run` into the disk cache now (`"trace"`: the parsed timeline),
    calling `progress(fraction, stage)` as each slow step starts; nothing for what is cached.

    Args:
        run: the profile run.
        tools: `insight.profiler.capture.TOOLS` names, or `"trace"`. Defaults to the ones the
            Profiler page reads (`PAGE_TOOLS`).
        progress: `progress(fraction, stage)`. Defaults to silent.
        host: which host file. Defaults to `0`.
        isolate: convert in a child process. Defaults to `None`: when the file is over
            `ISOLATE_BYTES`.

    Raises:
        DataError: the file is missing, empty or not an XSpace xprof can read, or the child
            process died.
    """
    report = progress or (lambda fraction, stage: None)
    if not is_cached(run, tools, host):
        if isolate if isolate is not None else run.size > ISOLATE_BYTES:
            _in_child(run, tools, report, host)
        else:
            _here(run, tools, report, host)
    report(1.0, "Done")


def _main(argv: list[str]) -> int:
    """`python -m insight.profiler.prepare XPLANE TOOL...`: one JSON line per stage."""
    path, tools = Path(argv[0]).resolve(), tuple(argv[1:])

    def say(fraction: float, stage: str) -> None:
        print(json.dumps({"fraction": fraction, "stage": stage}), flush=True)

    try:
        for run in find_profiles(path.parent):
            if path in run.hosts:
                _here(run, tools, say, run.hosts.index(path))
                return 0
        raise DataError(f"No profile at {path}.", "Capture the profile again.",
                        f"path={str(path)!r}")
    except InsightError as exc:
        print(json.dumps({"error": {"what": exc.what, "fix": exc.fix,
                                    "received": exc.received}}), flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
