"""`insight serve`: start Streamlit on the app, in this process, with warm imports.

TensorFlow's import is most of a cold start. As soon as Streamlit's runtime exists, and while
the browser loads the page, a background thread imports TensorFlow and Keras, loads the model
the first page will show into the app's resource cache and builds its Overview panels into
the panel cache, so the first script run finds all of that done. Meanwhile that run shows
the file check and the layer graph, which need no TensorFlow. What no first page needs
(UMAP's compilation) waits until the first page is drawn.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from insight.launch import LaunchOptions, app_argv
from insight.serving import Hosts

__all__ = ["serve", "page_drawn"]

ENTRY = Path(__file__).parent / "entry.py"
_PAGE_DRAWN = threading.Event()


def page_drawn() -> None:
    """Note that a script run has ended (`insight.ui.shell.main` calls this after each): the
    warm-up's optional part waits for the first one, so it does not slow the first page.

    >>> page_drawn()
    """
    _PAGE_DRAWN.set()


def _warm(opts: LaunchOptions) -> None:
    started = time.perf_counter()
    # The import holds the GIL for long stretches; hand it back to the server's event loop
    # often, so the browser's first page request is not starved meanwhile.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        from insight.ui.runtime import import_keras

        import_keras()  # the long part: TensorFlow
        # Back to the default: at 0.5 ms, the GIL's hand-offs between this thread, the
        # script's and the event loop slow the load and the first page's own Python work.
        sys.setswitchinterval(interval)
        from streamlit.runtime import Runtime

        while not Runtime.exists():  # the app's caches belong to the running server
            time.sleep(0.02)
        from insight.panels.registry import PanelContext
        from insight.ui.cache import get_model, panel
        from insight.ui.sidebar import default_ref

        ref = default_ref(opts)
        if ref is None:
            return
        ctx = PanelContext(get_model(ref))
        for name in ("model_card", "layer_table", "layer_graph", "param_chart"):
            panel(name, ref, ctx)  # the same cache entries the first page reads
        from insight.projector.projection import warm_up

        # The compilation holds the GIL and a core for seconds: on 2 cores, run while the
        # first page is still being built and drawn, it made that page ~15 s later
        # (MobileNetV2). So it waits for the first script run to end, then for the browser.
        _PAGE_DRAWN.wait()
        time.sleep(3.0)
        warm_up()  # UMAP's numba compilation, before anyone asks for a UMAP
        from insight.probe.reductions import warm_up as warm_statistics

        warm_statistics()  # the statistics' kernels on CPU (a second on a first start)
        print(f"insight: warm in {time.perf_counter() - started:.1f} s (TensorFlow, the "
              "model, UMAP, statistics)", file=sys.stderr, flush=True)
        # Not pynndescent (UMAPs of over 20,000 points): its ~25 s of compilation holds the
        # GIL, and any UMAP asked for meanwhile, however small, would wait for all of it.
    except Exception:  # noqa: BLE001  the page reports any real problem
        pass
    finally:
        sys.setswitchinterval(interval)


def serve(opts: LaunchOptions, *, host: str, port: int, token: str | None = None,
          hosts: Hosts | None = None) -> int:
    """Run the app until interrupted, behind `insight.ui.gate.Gate`; returns 0.

    Args:
        opts: what the app opens.
        host: the address to bind.
        port: the port.
        token: the token visitors must give, or `None` for none. It reaches the gate as an
            argument, never through `sys.argv` (which `ps` shows) or the environment
            (which child processes inherit).
        hosts: the host names the server answers (`insight.serving.allowed_hosts`).
    """
    from insight.results import cache_root

    cache = cache_root() / "numba"
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache))  # compiled UMAP kept across restarts
    threading.Thread(target=_warm, args=(opts,), name="insight-warm", daemon=True).start()
    import streamlit as st
    from starlette.middleware import Middleware

    from insight.ui.gate import Gate

    # Streamlit's ASGI app (st.App) takes middleware: the gate sees every request, the
    # websocket included, before Streamlit does.
    from insight.ui.static_panel import routes

    app = st.App(str(ENTRY), routes=routes(opts),
                 middleware=[Middleware(Gate, token=token, port=port, hosts=hosts)])
    sys.argv = [str(ENTRY), *app_argv(opts)]  # what the script reads (`launch_options`)
    app.run(config={
        "server.address": host, "server.port": port, "server.headless": True,
        "server.fileWatcherType": "none", "browser.gatherUsageStats": False,
        "runner.postScriptGC": False, "client.toolbarMode": "minimal", "theme.base": "light",
        # Streamlit's own welcome lists URLs without the token: insight printed the one to use.
        "logger.hideWelcomeMessage": token is not None,
    })
    return 0
