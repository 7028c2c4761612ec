"""Panels: every chart or table insight shows, by name, with its parameter schema.

`registry` holds the machinery (`Param`, `Panel`, `PanelContext`, `register`, `build_panel`);
one module per capability registers that capability's panels on import:

- `model`: the Overview (model card, layer table, layer graph, parameters per layer);
- `activations`: the Activations page; `gradients`: the Gradients page (what the two share,
  their data, examples, inputs and tokens, is in `probe`);
- `projector`: the Embeddings page;
- `curves`: the Training page;
- `compiler`: the XLA compiler page;
- `profiler`: the Profiler page;
- `doctor`: the Doctor page (findings, summary, each finding's evidence);
- `compare`: the Compare page (a second model: architecture diff, weights, CKA, predictions);
- `checkpoints`: the Checkpoints page (one model across its checkpoints); `runs`: the Runs
  page (runs with their hyperparameters).

Importing this package imports them all, so `panel_names()` lists every panel.

Example:

>>> from insight.panels import get_panel, panel_names
>>> "layer_graph" in panel_names()
True
>>> get_panel("layer_table").kind
'table'
"""

from insight.panels import (  # noqa: F401  each registers its panels
    activations,
    checkpoints,
    compare,
    compiler,
    curves,
    doctor,
    gradients,
    model,
    profiler,
    projector,
    runs,
)
from insight.panels.registry import (
    Panel,
    PanelContext,
    Param,
    build_panel,
    get_panel,
    panel_names,
    register,
    validate_params,
)

__all__ = ["Param", "Panel", "PanelContext", "register", "get_panel", "panel_names",
           "build_panel", "validate_params"]
