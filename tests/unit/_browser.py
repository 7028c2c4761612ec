"""What the browser tests and `benchmarks/bench_load.py` share: the system Chromium (skip
locally without one, fail in CI) and a real `insight serve` on a free port of 127.0.0.1.

A plain module, not a conftest: the benchmark imports it by path (`tests/` on `sys.path`), and
pytest need not be installed for the server helpers (it is imported where it is used).

Example:

>>> server = start_server(tmp / "serve.log", "--root", str(tmp))  # doctest: +SKIP
>>> urllib.request.urlopen(f"{server.url}/_stcore/health").read()  # doctest: +SKIP
b'ok'
>>> server.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def require_browser() -> Path:
    """The Chromium to use (`insight.export.render.find_browser`). Without one the test is skipped
    with the reason, except under `CI=true`, where a missing browser is a failure."""
    import pytest

    from insight.errors import InsightError
    from insight.export.render import find_browser

    try:
        return find_browser()
    except InsightError as exc:
        reason = f"no Chromium for browser tests ({exc})"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}; CI must install it (.ci/run: apt-get install chromium)")
        pytest.skip(reason)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running `insight serve`: its process, address and log."""

    proc: subprocess.Popen
    url: str
    port: int
    log: Path

    @property
    def pid(self) -> int:
        """The server's process id (its memory is read from /proc)."""
        return self.proc.pid

    def stop(self) -> None:
        """Terminate it; kill it after 15 s."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


def start_server(log: Path, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 90) -> Server:
    """`insight serve --host 127.0.0.1 --port <free> *args` (the bundled samples, digits_cnn
    first, unless `args` name a model), returned once `/_stcore/health` answers "ok" (the one
    path open without a token). The server sees this process's environment without its
    `INSIGHT_*` variables, plus `env`; its output goes to `log`.

    Raises:
        RuntimeError: the server exited or did not answer within `timeout` seconds; the
            message ends with the log's last lines.
    """
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INSIGHT_")}
    environ.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", **(env or {}))
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "insight.cli", "serve", "--host",
                                 "127.0.0.1", "--port", str(port), *args], env=environ,
                                stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, f"http://127.0.0.1:{port}", port, log)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2).read() == b"ok":
                return server
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"insight serve did not start (received: exit code "
                               f"{proc.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
