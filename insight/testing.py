"""A pytest helper for screenshot tests of your own models' panels.

```python
# tests/test_model_snapshots.py
from insight.testing import assert_panel_matches

def test_projection_looks_the_same():
    assert_panel_matches("models/classifier.keras", "projection?method=pca",
                         baseline_dir="tests/snapshots", data="tests/data/sample.npz")
```

The first run (or `INSIGHT_UPDATE_SNAPSHOTS=1 pytest`) writes the baselines; commit them. Later
runs fail with the differing share of pixels and the paths of `actual.png`, `expected.png` and
`diff.png`. One headless Chromium is kept open for the whole test session. The browser is found
as `insight export` finds it (`INSIGHT_BROWSER`, `BROWSER_PATH`, `/usr/bin/chromium`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from insight.export.snapshot import MAX_FRACTION, THRESHOLD, snapshot_panels

__all__ = ["assert_panel_matches", "panel_context"]

_LOADED: dict[tuple, Any] = {}


def panel_context(model: str | os.PathLike | Any, *, data: str | os.PathLike | None = None,
                  logdir: str | os.PathLike | None = None, safe_mode: bool = True):
    """A `PanelContext` for a model file (loaded once per test session) or a `LoadedModel`."""
    from insight.model.loading import LoadedModel, load_model
    from insight.panels.registry import PanelContext

    if isinstance(model, LoadedModel):
        loaded = model
    else:
        path = Path(model).resolve()
        key = (str(path), path.stat().st_mtime_ns, safe_mode)
        if key not in _LOADED:
            _LOADED[key] = load_model(path, safe_mode=safe_mode)
        loaded = _LOADED[key]
    return PanelContext(loaded, Path(data) if data else None, Path(logdir) if logdir else None)


def assert_panel_matches(model: str | os.PathLike | Any, panel: str, *,
                         baseline_dir: str | os.PathLike, data: str | os.PathLike | None = None,
                         logdir: str | os.PathLike | None = None,
                         threshold: float = THRESHOLD, max_fraction: float = MAX_FRACTION,
                         update: bool | None = None) -> None:
    """Fail (AssertionError) when `panel` of `model` no longer matches its baseline.

    Args:
        model: a model file, or an `insight.LoadedModel`.
        panel: a panel name, optionally with parameters: `"projection?method=umap"`.
        baseline_dir: where the baseline PNGs live.
        data: the inputs the panel reads. Defaults to `None` (the data beside the model,
            else synthetic).
        logdir: the logdir for training/profile panels. Defaults to `None`.
        threshold: per-pixel colour distance, 0..1. Defaults to `0.1`.
        max_fraction: share of pixels allowed to differ. Defaults to `0.002`.
        update: write the baseline instead of comparing; `None` reads the environment
            variable `INSIGHT_UPDATE_SNAPSHOTS`. Defaults to `None`.
    """
    from insight.export.render import shared_renderer

    if update is None:
        update = os.environ.get("INSIGHT_UPDATE_SNAPSHOTS", "") in ("1", "true", "yes")
    ctx = panel_context(model, data=data, logdir=logdir)
    (result,) = snapshot_panels(ctx, baseline_dir, [panel], update=update,
                                threshold=threshold, max_fraction=max_fraction,
                                renderer=shared_renderer())
    if result.status not in ("passed", "updated"):
        raise AssertionError(f"panel {panel!r} {result.status}: {result.message}")
