"""The XLA compiler page's panels: HLO before and after optimisation, what fusion did, which
layer became which instructions, one computation's graph, and compiled vs eager step time.

Every panel compiles through one memoised `insight.compiler.xla.compile_model` call per model, data
and function (`ctx.cached`), so switching views never recompiles. The batch is the first
`BATCH` examples of the model's data (`PanelContext.dataset`), hence `uses=("model", "data")`.
Importing this module registers the panels (`insight.panels` does it on first use).

Example:

>>> from insight.panels import build_panel, PanelContext
>>> ctx = PanelContext(loaded)  # doctest: +SKIP
>>> build_panel("xla_op_counts", ctx).layout.title.text  # doctest: +SKIP
'Instructions by opcode: forward pass, before and after optimisation'
>>> build_panel("xla_instructions", ctx, layer="conv1").opcode.tolist()  # doctest: +SKIP
['convolution', 'fusion']
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from insight.compiler.hlo import executed_computations, fusions
from insight.compiler.xla import (
    FUNCTIONS,
    STAGE_TITLES,
    STAGES,
    XlaCompilation,
    compile_model,
    step_times,
)
from insight.doctor import Evidence, get_check, run_checks
from insight.errors import UsageError
from insight.figures.compiler import hlo_graph_figure, op_counts_figure, step_time_figure
from insight.panels.registry import Panel, PanelContext, Param, register

__all__ = ["BATCH", "MAX_LINES", "compilation", "FUNCTION_TITLES", "xla_verdict"]

BATCH = 32  # rows of the batch every function is compiled and timed for
MAX_LINES = 3000  # HLO lines shown at once (the download holds them all)
FUNCTION_TITLES = {"forward": "forward pass", "train": "train step"}
_DATA = ("model", "data")
_FUNCTION = Param("function", "str", "forward", FUNCTIONS,
                  "forward: inference (training=False). train: forward (training=True), loss, "
                  "gradients and an SGD update that is computed but not applied: the model's "
                  "weights do not change. The train step needs labels.")
_STAGE = Param("stage", "str", "optimized_hlo", STAGES,
               "hlo: as TensorFlow built it; optimized_hlo: after XLA's passes (fusion).")
_LAYER = Param("layer", "str", "", help="Only this layer's instructions (a layer path).")
_SEARCH = Param("search", "str", "", help="Only instructions whose text holds this "
                "(case-insensitive).")


def compilation(ctx: PanelContext, function: str = "forward") -> XlaCompilation:
    """The model's `function` compiled for the first `BATCH` examples of its data, memoised.

    Raises:
        UsageError: `"train"` on data without labels.
        CompileError: XLA cannot compile the function.
    """
    ds = ctx.dataset()
    if function == "train" and ds.y is None:
        raise UsageError(
            "A train step needs labels, and this data has none"
            + (" (synthetic inputs)." if ds.synthetic else "."),
            "Give a data file with labels (y): the sidebar's Data field or --data. Or look "
            "at the forward pass.",
            f"data={ds.name or 'synthetic'!r}")
    head = ds.take(slice(0, min(BATCH, len(ds))))
    return ctx.cached(f"xla:{function}:{BATCH}",
                      lambda: compile_model(ctx.loaded, head.x, head.y, function=function))


def _summary(ctx: PanelContext, function: str) -> dict[str, Any]:
    comp = compilation(ctx, function)
    counts = comp.op_count_table()
    computations = {}
    for stage in STAGES:
        module = comp.module(stage)
        run = [c.name for c in executed_computations(module)]
        fused = [f.computation for f in fusions(module)]
        computations[stage] = [module.entry.name] + [n for n in run + fused
                                                     if n != module.entry.name]
    return {"model": comp.model_name, "function": function, "batch": comp.batch,
            "loss": comp.loss, "seconds": dict(comp.seconds),
            "before": int(counts["before"].sum()), "after": int(counts["after"].sum()),
            "fusions": int(len(comp.fusion_table())),
            "layers": list(comp.layer_classes), "classes": sorted(set(comp.layer_classes.values())),
            "computations": computations,
            "entry": {s: comp.module(s).entry.name for s in STAGES}}


def _op_counts(ctx: PanelContext, function: str) -> Any:
    table = compilation(ctx, function).op_count_table()
    before, after = int(table["before"].sum()), int(table["after"].sum())
    return op_counts_figure(table, title=f"Instructions by opcode: {before:,} → {after:,}"
                                         f"<br><sup>{FUNCTION_TITLES[function]}, before and "
                                         "after optimisation</sup>")


def _op_count_table(ctx: PanelContext, function: str) -> pd.DataFrame:
    return compilation(ctx, function).op_count_table()


def _fusions(ctx: PanelContext, function: str) -> pd.DataFrame:
    return compilation(ctx, function).fusion_table()


def _layers(ctx: PanelContext, function: str) -> pd.DataFrame:
    return compilation(ctx, function).layer_table()


def _instructions(ctx: PanelContext, function: str, stage: str, layer: str,
                  search: str) -> pd.DataFrame:
    return compilation(ctx, function).instruction_table(stage, layer, search)


def _hlo(ctx: PanelContext, function: str, stage: str, layer: str,
         search: str) -> dict[str, Any]:
    comp = compilation(ctx, function)
    text = comp.hlo_text(stage, layer, search)
    lines = comp.hlo_text(stage, layer, search, compact=True).splitlines()
    return {"stage": stage, "module": comp.module(stage).name, "text": text,
            "shown": "\n".join(lines[:MAX_LINES]), "lines": len(lines),
            "truncated": len(lines) > MAX_LINES}


def _graph(ctx: PanelContext, function: str, stage: str, computation: str,
           detail: bool, layer: str) -> Any:
    comp = compilation(ctx, function)
    target = comp.computation(stage, computation)
    layer = comp.check_layer(layer)
    members = {} if stage != "optimized_hlo" else dict(
        zip(*[comp.fusion_table()[c].tolist() for c in ("fusion", "members")], strict=True))
    shown = "every instruction" if detail else "parameters, constants and bitcasts hidden"
    kind = "entry computation" if target.is_entry else "computation"
    if layer:
        shown += f"; {layer}'s instructions outlined"
    return hlo_graph_figure(
        target, title=f"The {kind} {target.name}, {STAGE_TITLES[stage]}<br><sup>"
                      f"{len(target.instructions)} instructions ({shown}); hover a node for "
                      "its shape, layer and fused ops</sup>",
        layers=lambda inst: comp.layers_of(inst, stage), members=members,
        hidden=() if detail else ("parameter", "constant", "bitcast", "get-tuple-element",
                                  "tuple"), highlight=layer)


def xla_verdict(ctx: PanelContext, times: pd.DataFrame) -> str:
    """What to say when XLA is slower than `tf.function` on the same batch (`""` when it is
    not): the doctor's `xla_slower` finding on these step times, its first sentence in bold.

    Args:
        ctx: the panel context (its model's layers name a likely cause).
        times: `insight.compiler.xla.step_times`' frame.
    """
    report = run_checks(Evidence(ctx.loaded, xla=lambda: times), checks=[get_check("xla_slower")])
    if not report.findings:
        return ""
    f = report.findings[0]
    head, _, rest = f.explanation.partition(". ")
    return f"**{head}.** {rest} {f.suggestion}"


def _step_time(ctx: PanelContext, function: str) -> Any:
    comp = compilation(ctx, function)
    table = step_times(comp)
    fig = step_time_figure(table, title=f"Step time of the {FUNCTION_TITLES[function]} "
                                        f"on one batch of {comp.batch}")
    median = dict(zip(table["mode"], table["median_ms"].round(4), strict=True))
    fig.update_layout(meta={
        "first_call_s": dict(zip(table["mode"], table["first_call_s"].round(4), strict=True)),
        "median_ms": median,
        "verdict": xla_verdict(ctx, table)})
    return fig


for _panel in (
    Panel("xla_summary", "XLA compilation summary", "card", _summary, (_FUNCTION,),
          description="Instruction and fusion counts, compile times, computations.",
          uses=_DATA, deterministic=False),  # the compile times change run to run
    Panel("xla_op_counts", "Op counts before and after optimisation", "figure", _op_counts,
          (_FUNCTION,), description="What fusion did: instructions by opcode, before and "
          "after XLA's passes.", uses=_DATA),
    Panel("xla_op_count_table", "Op counts (numbers)", "table", _op_count_table, (_FUNCTION,),
          description="Instructions by opcode before and after optimisation.", uses=_DATA),
    Panel("xla_fusions", "Fusions", "table", _fusions, (_FUNCTION,),
          description="Every fusion XLA made, its member ops and the layers they come from.",
          uses=_DATA),
    Panel("xla_layers", "HLO per layer", "table", _layers, (_FUNCTION,),
          description="How many HLO instructions each layer became.", uses=_DATA),
    Panel("xla_instructions", "HLO instructions", "table", _instructions,
          (_FUNCTION, _STAGE, _LAYER, _SEARCH),
          description="The instructions that run, with the layer each came from.", uses=_DATA),
    Panel("xla_hlo", "HLO text", "card", _hlo, (_FUNCTION, _STAGE, _LAYER, _SEARCH),
          description="The HLO module as text, optionally one layer's instructions.",
          uses=_DATA),
    Panel("xla_graph", "HLO computation graph", "figure", _graph,
          (_FUNCTION, _STAGE, Param("computation", "str", "", help="A computation name; "
                                    "empty: the entry computation."),
           Param("detail", "bool", False, help="Also show parameters, constants and "
                 "bitcasts."), _LAYER),
          description="The dataflow graph of one computation (fusions as nodes).", uses=_DATA),
    Panel("xla_step_time", "Compiled vs eager step time", "figure", _step_time, (_FUNCTION,),
          description="The same batch run eagerly, as a tf.function, and compiled by XLA.",
          uses=_DATA, deterministic=False),
):
    register(_panel)
