"""Headless rendering of plotly figures to PNG/SVG with the system Chromium, one browser for
many figures.

`Renderer` keeps ONE Chromium (through kaleido 1.x) open in a background thread, so each
figure after the first costs a render, not a browser start (`plotly.io.write_image` starts a
browser per call). The browser is found with `find_browser`: `INSIGHT_BROWSER`, then
`BROWSER_PATH` (kaleido's own variable), then `/usr/bin/chromium`, then `chromium` /
`chromium-browser` / `google-chrome` on `PATH`. Nothing is ever downloaded, and MathJax (which
kaleido would fetch from a CDN) is off, so rendering works with the network off.
`check_rendering` says, before any work starts, whether images can be drawn at all (kaleido
importable, a Chromium found), as a `UsageError` that names the fix.

Example:

>>> import plotly.graph_objects as go
>>> with Renderer() as r:  # doctest: +SKIP
...     png = r.render(go.Figure(go.Bar(y=[1, 2])), "png", 600, 400)
>>> png[:4]  # doctest: +SKIP
b'\\x89PNG'
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from insight.errors import UsageError

__all__ = ["find_browser", "check_rendering", "require_module", "Renderer", "shared_renderer",
           "FORMATS"]

FORMATS = ("png", "svg")
_DEFAULT = Path("/usr/bin/chromium")
_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser(explicit: str | os.PathLike | None = None) -> Path:
    """The Chromium to render with.

    Args:
        explicit: a path that wins over everything else. Defaults to `None`.

    Raises:
        UsageError: the named browser does not exist, or none was found.
    """
    for source, value in (("browser", explicit),
                          ("INSIGHT_BROWSER", os.environ.get("INSIGHT_BROWSER")),
                          ("BROWSER_PATH", os.environ.get("BROWSER_PATH"))):
        if value:
            path = Path(value).expanduser()
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise UsageError(f"The browser named by {source} is not an executable file.",
                                 "Point it at Chromium (Debian: apt-get install chromium).",
                                 f"{source}={str(value)!r}")
            return path
    if _DEFAULT.is_file():
        return _DEFAULT
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise UsageError("No Chromium found to render images with.",
                     "Install it (Debian: apt-get install chromium) or set INSIGHT_BROWSER to "
                     "its path; insight never downloads a browser.",
                     f"INSIGHT_BROWSER=None, BROWSER_PATH=None, PATH lookups={list(_NAMES)}")


def require_module(module: str, package: str, what: str, hint: str = "") -> Any:
    """Import `module`, or raise a `UsageError` saying which package to install.

    Args:
        module: the module to import, e.g. `"kaleido"`.
        package: its pip requirement, e.g. `"kaleido>=1.0"`.
        what: what needs it, e.g. `"PNG and SVG images are drawn"`.
        hint: a sentence added to the fix. Defaults to `""`.

    Returns:
        The module.

    Raises:
        UsageError: the import fails (not installed, or installed without its own
            dependencies).
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        name = package.split(">")[0].split("=")[0]
        raise UsageError(
            f"{what} with the {name} package, which cannot be imported.",
            f"Install it with pip install '{package}' (insight depends on it: reinstalling "
            f"insight brings it).{' ' + hint if hint else ''}",
            f"import {module}: {exc}") from exc


_KALEIDO = ("kaleido", "kaleido>=1.0", "PNG and SVG images are drawn",
            "HTML exports need neither it nor a browser.")


def check_rendering(browser: str | os.PathLike | None = None) -> Path:
    """Check, before any work, that images can be rendered: kaleido imports and a Chromium is
    found. The CLI calls it before loading a model, the app before offering a PNG.

    Args:
        browser: a Chromium path that wins over the environment. Defaults to `None`.

    Returns:
        The browser `Renderer(browser)` would start.

    Raises:
        UsageError: kaleido is missing, or no Chromium is found (each message names the fix).

    Example:

    >>> check_rendering()  # doctest: +SKIP
    PosixPath('/usr/bin/chromium')
    """
    require_module(*_KALEIDO)
    return find_browser(browser)


class Renderer:
    """One headless Chromium (kaleido) kept open to render many figures.

    Thread-safe: renders are queued on the renderer's own event loop. Use it as a context
    manager, or call `close()`.

    Args:
        browser: the Chromium executable; `None` finds one with `find_browser`.
            Defaults to `None`.
        timeout: seconds one render may take. Defaults to `60`.
    """

    def __init__(self, browser: str | os.PathLike | None = None, *, timeout: float = 60):
        kaleido = require_module(*_KALEIDO)  # lazy: only images need it
        self.browser = find_browser(browser)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="insight-renderer")
        self._thread.start()

        async def _open() -> Any:
            k = kaleido.Kaleido(n=1, timeout=timeout, path=str(self.browser), mathjax=False)
            await k.open()
            return k

        try:
            self._kaleido = self._run(_open())
        except Exception as exc:
            self._stop_loop()
            raise UsageError("Chromium did not start for rendering.",
                             "Check that the browser runs headless (try `chromium --headless "
                             "--no-sandbox --screenshot about:blank`).",
                             f"browser={str(self.browser)!r}, error={exc!r}") from exc

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def render(self, figure: Any, fmt: str, width: int, height: int, scale: float = 1) -> bytes:
        """The figure as `fmt` (`"png"` or `"svg"`) bytes at `width` x `height` CSS pixels."""
        if fmt not in FORMATS:
            raise UsageError(f"Images are rendered as {' or '.join(FORMATS)}.", "",
                             f"format={fmt!r}")
        fig = figure.to_dict() if hasattr(figure, "to_dict") else figure
        opts = {"format": fmt, "width": int(width), "height": int(height), "scale": scale}
        return self._run(self._kaleido.calc_fig(fig, opts=opts))

    def close(self) -> None:
        """Close the browser and stop the renderer's thread (idempotent)."""
        if self._loop.is_closed():
            return
        try:
            self._run(self._kaleido.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SHARED: list[Renderer] = []
_SHARED_LOCK = threading.Lock()


def shared_renderer() -> Renderer:
    """A process-wide renderer, started on first use and closed at exit (the app's PNG
    downloads and `insight.testing` use it)."""
    with _SHARED_LOCK:
        if not _SHARED:
            import atexit

            _SHARED.append(Renderer())
            atexit.register(_SHARED[0].close)
        return _SHARED[0]
