"""The Compare page's panels: the loaded model (A) against a second one (B, `--compare`).

B is `ctx.compare_path`, a model file loaded like A (safe mode as A's, in an isolated child
first); a folder of checkpoints is the checkpoint timeline's, not these panels'. Every panel
reads B through `ctx.cached("compare_model", ...)`, so the app answers it from its model
cache, and the runs of both models on data through `ctx.cached` too.

- `compare_summary` (card), `compare_architecture` (table: the `git diff`), `compare_graph`
  (B's layer graph with the changed and added layers outlined);
- `compare_weights` (relative change and cosine by depth), `compare_weights_table`;
- `compare_cka` (linear CKA of every layer pair, minibatch estimator);
- `compare_confusion`, `compare_accuracy`, `compare_disagreements` (the inputs they disagree
  about most, drawn when they are images), `compare_disagreement_table`;
- `compare_activations` (dead units appeared / disappeared, saturation before and after).

Example:

>>> from insight.panels import build_panel, PanelContext
>>> ctx = PanelContext(loaded, compare_path=Path("b.keras"))  # doctest: +SKIP
>>> build_panel("compare_architecture", ctx).status.value_counts()  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from insight.compare.comparison import Comparison
from insight.errors import UsageError
from insight.figures.activations import image_grid_figure, message_figure
from insight.figures.compare import cka_figure, confusion_figure, weight_change_figure
from insight.figures.model import graph_figure
from insight.model.loading import LoadedModel, load_model
from insight.panels.model import full_graph
from insight.panels.registry import Panel, PanelContext, Param, register

__all__ = ["other_model", "comparison", "is_checkpoint_folder", "CKA_EXAMPLES", "USES"]

USES = ("model", "data", "compare")
CKA_EXAMPLES = 1024  # inputs CKA reads by default: enough for a stable estimate, seconds on CPU
_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def is_checkpoint_folder(path: Path) -> bool:
    """Whether `path` is a folder of checkpoints (several model or `.weights.h5` files) rather
    than one model (a file, a SavedModel folder, a folder holding one model file).

    >>> is_checkpoint_folder(Path("model.keras"))
    False
    """
    if not path.is_dir() or (path / "saved_model.pb").exists():
        return False
    files = [p for p in path.iterdir() if p.is_file() and p.name.endswith(_MODEL_SUFFIXES)]
    return len(files) > 1 or any(p.name.endswith(".weights.h5") for p in files)


def other_model(ctx: PanelContext) -> LoadedModel:
    """B, the model `ctx.compare_path` names, loaded once per context (safe mode as A's).

    Raises:
        UsageError: no second model, or a folder of checkpoints.
        ModelLoadError: B cannot be loaded safely.
    """
    path = ctx.compare_path
    if path is None:
        raise UsageError("There is no second model to compare with.",
                         "Start with `insight serve A.keras --compare B.keras`, or choose "
                         "one under “Compare with…” in the sidebar.", "compare_path=None")
    if is_checkpoint_folder(Path(path)):
        raise UsageError("The second path is a folder of checkpoints, not one model.",
                         "Its timeline is on the Checkpoints view; give one model file to "
                         "compare two models.", f"compare_path={str(path)!r}")
    safe = ctx.loaded.safe_mode if ctx.loaded is not None else True
    return ctx.cached("compare_model", lambda: load_model(path, safe_mode=safe, isolate=True))


def _inputs(ctx: PanelContext, examples: int) -> Any:
    """The first `examples` rows of A's dataset (`ctx.dataset()`), labels included."""
    ds = ctx.dataset()
    return ds.take(np.arange(min(len(ds), examples))) if len(ds) > examples else ds


def comparison(ctx: PanelContext, examples: int = CKA_EXAMPLES) -> Comparison:
    """A `Comparison` of A and B on (the first `examples` rows of) A's data, memoised so
    every panel shares its tables."""
    b = other_model(ctx)
    return ctx.cached(f"comparison|{examples}",
                      lambda: Comparison(ctx.loaded, b, _inputs(ctx, examples)))


def _names(ctx: PanelContext) -> tuple[str, str]:
    b = other_model(ctx)
    a_name, b_name = (ctx.loaded.name if ctx.loaded is not None else "A"), b.name
    if a_name == b_name and ctx.loaded is not None:  # two runs of one model: say the files
        a_name, b_name = f"{a_name} ({ctx.loaded.path.name})", f"{b_name} ({b.path.name})"
    return f"A: {a_name}", f"B: {b_name}"


def _summary(ctx: PanelContext) -> dict[str, Any]:
    cmp = comparison(ctx)
    name_a, name_b = _names(ctx)
    diff = cmp.architecture_diff()
    card: dict[str, Any] = {"model A": name_a[3:], "model B": name_b[3:]}
    for status in ("same", "changed", "added", "removed"):
        card[f"layers {status}"] = int((diff.status == status).sum())
    card["params A"] = int(diff.params_a.sum())
    card["params B"] = int(diff.params_b.sum())
    card["inputs"] = _describe(cmp)
    card["agreement"] = f"{cmp.agreement:.1%}"
    acc = cmp.per_class_accuracy()
    if acc is not None:
        total = acc.iloc[-1]
        card["accuracy A"] = f"{total.accuracy_a:.1%}"
        card["accuracy B"] = f"{total.accuracy_b:.1%}"
    return card


def _describe(cmp: Comparison) -> str:
    from insight.probe.capture import count_rows

    return f"{count_rows(cmp.x):,} examples" + (" with labels" if cmp.y is not None else "")


def _architecture(ctx: PanelContext):
    return comparison(ctx).architecture_diff()


def _graph(ctx: PanelContext, show: str = "changed"):
    b = other_model(ctx)
    diff = comparison(ctx).architecture_diff()
    wanted = {"changed": ("changed", "added"), "added": ("added",)}[show]
    marked = tuple(diff.loc[diff.status.isin(wanted), "layer_b"])
    graph = full_graph(PanelContext(b))
    ids = {n.id for n in graph.nodes}
    marked = tuple(m for m in marked if m in ids)
    removed = int((diff.status == "removed").sum())
    note = f"{len(marked)} layer{'s' * (len(marked) != 1)} outlined ({' or '.join(wanted)})"
    if removed:
        note += f"; {removed} removed from A"
    # A deep model shrunk to fit the frame outlines lines, not boxes: open at full size on
    # the first outlined layer instead (drag to pan), as a search hit opens the Overview's.
    return graph_figure(graph, title=f"Layer graph of B: {b.name}", highlight=marked,
                        centre_on=marked[0] if marked else "", fit=not marked, note=note)


def _weights(ctx: PanelContext):
    frame = comparison(ctx).weight_changes()
    if frame.empty:
        return message_figure("No matched layer has weights.", title="Weight change per layer")
    name_a, name_b = _names(ctx)
    return weight_change_figure(frame, note=f"{name_a} → {name_b}")


def _weights_table(ctx: PanelContext):
    return comparison(ctx).weight_changes()


def _cka(ctx: PanelContext, examples: int = CKA_EXAMPLES, layers: str = "all"):
    cmp = comparison(ctx, examples)
    choose = _weighted_layers if layers == "with weights" else None
    la = choose(ctx.loaded) if choose else None
    lb = choose(other_model(ctx)) if choose else None
    matrix = ctx.cached(f"cka|{examples}|{layers}", lambda: cmp.cka(la, lb))
    name_a, name_b = _names(ctx)
    return cka_figure(matrix, name_a=name_a, name_b=name_b,
                      note=f"{_describe(cmp)}, {_batches(cmp)} (unbiased HSIC)")


def _batches(cmp: Comparison) -> str:
    from insight.probe.capture import count_rows

    n, size = count_rows(cmp.x), cmp.batch_size
    return f"one minibatch of {n}" if n <= size else \
        f"{-(-n // size)} minibatches of {size}"


def _weighted_layers(loaded: Any) -> list[str]:
    from insight.model.layers import as_model, iter_layers

    return [p for p, layer, _ in iter_layers(as_model(loaded))
            if layer.weights and not getattr(layer, "layers", None)]


def _predictions(ctx: PanelContext) -> Comparison:
    cmp = comparison(ctx)
    ctx.cached("predictions", cmp.predictions)
    return cmp


def _confusion(ctx: PanelContext):
    cmp = _predictions(ctx)
    name_a, name_b = _names(ctx)
    return confusion_figure(cmp.confusion(), name_a=name_a, name_b=name_b,
                            title=f"A's predictions vs B's: {cmp.agreement:.1%} agree")


def _accuracy(ctx: PanelContext):
    cmp = _predictions(ctx)
    acc = cmp.per_class_accuracy()
    if acc is None:
        raise UsageError("Per-class accuracy needs labels, and the data has none.",
                         "Give a data file with labels (an .npz with x and y).",
                         f"data={_describe(cmp)}")
    return acc


def _class_name(cmp: Comparison, c: int) -> str:
    names = cmp.class_names
    return str(names[c]) if names and 0 <= c < len(names) else str(c)


def _disagreement_table(ctx: PanelContext, k: int = 12):
    cmp = _predictions(ctx)
    table = cmp.disagreements(top=k).copy()
    if cmp.class_names:
        for col in ("class_a", "class_b", "label"):
            table[col] = [_class_name(cmp, int(c)) if c >= 0 else "" for c in table[col]]
    return table


def _disagreements(ctx: PanelContext, k: int = 12):
    cmp = _predictions(ctx)
    top = cmp.disagreements(top=k)
    title = f"Where they disagree most ({len(top)} of {_count(cmp)} disagreements shown)"
    if top.empty:
        return message_figure("A and B predict the same class for every input.", title=title)
    x = cmp.x if not isinstance(cmp.x, dict) else next(iter(cmp.x.values()))
    rows = np.asarray(x)[top["index"].to_numpy()]
    if rows.ndim not in (3, 4) or (rows.ndim == 4 and rows.shape[-1] not in (1, 3, 4)):
        return message_figure("The inputs are not images: see the disagreements table.",
                              title=title)
    captions = [f"#{r.index} A:{_class_name(cmp, r.class_a)} B:{_class_name(cmp, r.class_b)}"
                + (f" y:{_class_name(cmp, r.label)}" if r.label >= 0 else "")
                for r in top.itertuples()]
    return image_grid_figure(rows, captions, title=title, cols=6)


def _count(cmp: Comparison) -> int:
    from insight.compare.predictions import classes_of

    pa, pb = cmp.predictions()
    return int(np.sum(classes_of(pa) != classes_of(pb)))


def _activations(ctx: PanelContext):
    cmp = comparison(ctx)
    return ctx.cached("activation_changes", cmp.activation_changes)


_EXAMPLES = Param("examples", "int", CKA_EXAMPLES, min_value=4, max_value=100_000,
                  help="How many inputs (the first rows of the data) both models run on.")
_K = Param("k", "int", 12, min_value=1, max_value=200, help="How many inputs to show.")

register(Panel("compare_summary", "A vs B", "card", _summary, uses=USES,
               description="Layers same, changed, added and removed; agreement; accuracies."))
register(Panel("compare_architecture", "Architecture diff", "table", _architecture,
               uses=USES, description="Every layer of A and B: added, removed, changed (class, "
                                      "config keys, shape, parameters) or the same."))
register(Panel("compare_graph", "Architecture diff on the graph", "figure", _graph,
               params=(Param("show", "str", "changed", choices=("changed", "added"),
                             help="Outline the changed and added layers, or the added only."),),
               uses=USES, description="B's layer graph with the layers that differ outlined."))
register(Panel("compare_weights", "Weight change", "figure", _weights, uses=USES,
               description="Per matched layer: ‖W_B − W_A‖ / ‖W_A‖ (log) and the cosine, "
                           "by depth."))
register(Panel("compare_weights_table", "Weight change (table)", "table", _weights_table,
               uses=USES, description="Relative change and cosine per matched layer."))
register(Panel("compare_cka", "Representation similarity (CKA)", "figure", _cka,
               params=(_EXAMPLES, Param("layers", "str", "all",
                                        choices=("all", "with weights"),
                                        help="Every layer, or only layers with weights.")),
               uses=USES, description="Linear CKA between every layer of A and every layer "
                                      "of B on the same inputs (minibatch unbiased HSIC)."))
register(Panel("compare_confusion", "Predictions: A vs B", "figure", _confusion, uses=USES,
               description="How often A predicts one class and B another."))
register(Panel("compare_accuracy", "Accuracy per class", "table", _accuracy, uses=USES,
               description="Each model's accuracy per true class, and overall."))
register(Panel("compare_disagreements", "Disagreements", "figure", _disagreements,
               params=(_K,), uses=USES,
               description="The inputs A and B classify differently, most confident first."))
register(Panel("compare_disagreement_table", "Disagreements (table)", "table",
               _disagreement_table, params=(_K,), uses=USES,
               description="Index, both predictions and confidences, label, distance."))
register(Panel("compare_activations", "Dead and saturated units", "table", _activations,
               uses=USES, description="Per matched layer: dead units that appeared or "
                                      "disappeared, saturation in A and in B."))
