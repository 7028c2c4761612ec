"""The result of compiling a model with XLA: HLO before and after optimisation, read back
to Keras layers.

`XlaCompilation` holds both HLO texts and their parsed modules, and the TensorFlow name scope
each layer ran in while the function was traced; from those it answers which instructions a
layer became, what XLA fused, and how the opcode counts changed.
`insight.compiler.xla.compile_model` builds one; this module runs nothing.

Example:

>>> comp = insight.compile_model(loaded, x[:32])  # doctest: +SKIP
>>> comp.layer_table().loc[0, ["layer", "hlo_before", "hlo_after"]].tolist()  # doctest: +SKIP
['conv1', 8, 2]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from insight.compiler.hlo import (
    HloComputation,
    HloInstruction,
    HloModule,
    executed_computations,
    fusions,
    op_counts,
)
from insight.errors import UsageError

__all__ = ["FUNCTIONS", "STAGES", "STAGE_TITLES", "XlaCompilation", "BACKWARD_SCOPE",
           "in_layer"]

FUNCTIONS = ("forward", "train")
STAGES = ("hlo", "optimized_hlo")
STAGE_TITLES = {"hlo": "before optimisation", "optimized_hlo": "after optimisation"}
BACKWARD_SCOPE = "gradient_tape/"  # the name scope TensorFlow gives gradient ops
_BACKWARD = BACKWARD_SCOPE
def in_layer(layer: str, layers: list[str]) -> bool:
    """Whether `layer` is one of `layers` or holds one of them (a nested model's path).

    >>> in_layer("backbone", ["backbone/conv2"]), in_layer("conv", ["conv2"])
    (True, False)
    """
    return any(name == layer or name.startswith(layer + "/") for name in layers)


_SOURCE = re.compile(r' source_file="[^"]*"(?: source_line=\d+)?')


@dataclass
class XlaCompilation:
    """One function of one model compiled by XLA for one batch.

    Attributes:
        model_name: the model's name.
        function: `"forward"` or `"train"`.
        batch: rows in the batch it was compiled for.
        text: `{stage: HLO text}` for `"hlo"` and `"optimized_hlo"`.
        modules: the same, parsed.
        scopes: `{layer path: name scopes it ran in}` while tracing.
        layer_classes: `{layer path: class name}`.
        loss: the train step's loss name (`""` for the forward pass).
        seconds: `{"trace": ..., "hlo": ..., "optimized_hlo": ...}` wall time of each step.
        runnable: `(python function, XLA tf.function, args)` for `step_times` to call; `None`
            when the compilation was not made by `compile_model`.
    """

    model_name: str
    function: str
    batch: int
    text: dict[str, str]
    modules: dict[str, HloModule]
    scopes: dict[str, tuple[str, ...]]
    layer_classes: dict[str, str]
    loss: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    runnable: Any = field(default=None, repr=False)
    _by_scope: dict[str, str] = field(default_factory=dict, repr=False)
    _fusions: dict[str, dict[str, tuple[HloInstruction, ...]]] = field(default_factory=dict,
                                                                       repr=False)

    def __post_init__(self) -> None:
        for path, scopes in self.scopes.items():
            for scope in scopes:
                self._by_scope.setdefault(scope, path)

    # -- layers ------------------------------------------------------------------------------

    def layer_of(self, op_name: str) -> str:
        """The layer path an HLO `op_name` belongs to (innermost layer), `""` if none.

        >>> comp.layer_of("gradient_tape/conv1_1/ReluGrad")  # doctest: +SKIP
        'conv1'
        """
        name = op_name[len(_BACKWARD):] if op_name.startswith(_BACKWARD) else op_name
        parts = name.split("/")
        for k in range(len(parts), 0, -1):
            found = self._by_scope.get("/".join(parts[:k]))
            if found is not None:
                return found
        return ""

    def module(self, stage: str) -> HloModule:
        """The parsed module of `stage` (`"hlo"` or `"optimized_hlo"`).

        Raises:
            UsageError: an unknown stage.
        """
        if stage not in self.modules:
            raise UsageError(f"Unknown HLO stage {stage!r}. Stages are: {', '.join(STAGES)}.",
                             "", f"stage={stage!r}")
        return self.modules[stage]

    def layers_of(self, inst: HloInstruction, stage: str) -> list[str]:
        """Layers an instruction computes: its own `op_name`'s, and for a fusion those of
        its members (in order of first appearance). After optimisation, constants and what
        is computed from constants alone are left out: XLA merges equal ones of different
        layers into one, which keeps only the first layer's name."""
        if stage == "optimized_hlo" and inst.opcode == "constant":
            return []  # XLA merges equal constants across layers: their op_name misleads
        names = [inst.op_name]
        if inst.opcode == "fusion":
            names += [m.op_name for m in _computed(_fusion_index(self, stage).get(inst.name, ()))]
        found = []
        for name in names:
            layer = self.layer_of(name)
            if layer and layer not in found:
                found.append(layer)
        return found

    def layer_table(self) -> pd.DataFrame:
        """One row per layer: how many HLO instructions it became before and after
        optimisation (a fusion counts once), and the fusions holding its ops."""
        before = _per_layer(self, "hlo")
        after = _per_layer(self, "optimized_hlo")
        rows = []
        for path, cls in self.layer_classes.items():
            fused = [i.name for i in after.get(path, []) if i.opcode == "fusion"]
            types = sorted({i.op_type for i in before.get(path, []) if i.op_type})
            rows.append({"layer": path, "class": cls, "hlo_before": len(before.get(path, [])),
                         "hlo_after": len(after.get(path, [])), "fusions": len(fused),
                         "op_types": ", ".join(types)})
        return pd.DataFrame(rows, columns=["layer", "class", "hlo_before", "hlo_after",
                                           "fusions", "op_types"])

    def instruction_table(self, stage: str, layer: str = "", search: str = "") -> pd.DataFrame:
        """The instructions that run (fusion bodies folded into their fusion), with the layer
        each belongs to; only `layer`'s when given, only those whose text holds `search`."""
        module = self.module(stage)
        layer = self.check_layer(layer)
        index = _fusion_index(self, stage)
        rows = []
        for comp in executed_computations(module):
            for inst in comp.instructions:
                layers = self.layers_of(inst, stage)
                if layer and not in_layer(layer, layers):
                    continue
                if search and search.lower() not in inst.text.lower():
                    continue
                members = index.get(inst.name, ())
                rows.append({
                    "instruction": inst.name, "opcode": inst.opcode, "layer": ", ".join(layers),
                    "pass": _pass(inst, members), "shape": inst.shape,
                    "fused_ops": _member_text(members), "op_type": inst.op_type,
                    "op_name": inst.op_name, "computation": comp.name})
        return pd.DataFrame(rows, columns=["instruction", "opcode", "layer", "pass", "shape",
                                           "fused_ops", "op_type", "op_name", "computation"])

    def hlo_text(self, stage: str, layer: str = "", search: str = "", *,
                 compact: bool = False) -> str:
        """The module's HLO text; with `layer` or `search`, only the matching instructions,
        under their computation's header. `compact` drops the `source_file`/`source_line`
        metadata (always TensorFlow's own `ops.py` for Keras models)."""
        if compact:
            return _SOURCE.sub("", self.hlo_text(stage, layer, search))
        if not layer and not search:
            self.module(stage)
            return self.text[stage]
        module = self.module(stage)
        layer = self.check_layer(layer)
        out = []
        for comp in module.computations.values():
            lines = [i.text for i in comp.instructions
                     if (not layer or in_layer(layer, self.layers_of(i, stage)))
                     and (not search or search.lower() in i.text.lower())]
            if lines:
                out.append("\n".join([comp.header, *(f"  {t}" for t in lines), "}"]))
        return "\n\n".join(out)

    def check_layer(self, layer: str) -> str:
        """`layer` itself when it is a layer path of the model (or empty).

        Raises:
            UsageError: no such layer; the message lists the valid ones.
        """
        if layer and layer not in self.layer_classes:
            raise UsageError(
                f"No such layer: {layer!r}. Existing layers are: "
                f"{', '.join(self.layer_classes)}.", "Pick a layer path from the layer table.",
                f"layer={layer!r}")
        return layer

    # -- what fusion did ---------------------------------------------------------------------

    def op_count_table(self) -> pd.DataFrame:
        """Instructions by opcode before and after optimisation (`change` = after - before),
        biggest change first."""
        before, after = op_counts(self.modules["hlo"]), op_counts(self.modules["optimized_hlo"])
        rows = [{"opcode": op, "before": before.get(op, 0), "after": after.get(op, 0)}
                for op in sorted(set(before) | set(after))]
        frame = pd.DataFrame(rows, columns=["opcode", "before", "after"])
        frame["change"] = frame["after"] - frame["before"]
        order = frame["change"].abs().sort_values(ascending=False, kind="stable").index
        return frame.loc[order].reset_index(drop=True)

    def fusion_table(self) -> pd.DataFrame:
        """Every fusion after optimisation: kind, members (`add ×2, maximum`), layers."""
        rows = []
        for fusion in fusions(self.modules["optimized_hlo"]):
            inst = fusion.instruction
            rows.append({"fusion": inst.name,
                         "layers": ", ".join(self.layers_of(inst, "optimized_hlo")),
                         "ops": len(fusion.members), "members": _member_text(fusion.members),
                         "kind": inst.kind, "shape": inst.shape,
                         "computation": fusion.computation})
        return pd.DataFrame(rows, columns=["fusion", "layers", "ops", "members", "kind",
                                           "shape", "computation"])

    def computation(self, stage: str, name: str = "") -> HloComputation:
        """A computation of `stage` by name (the entry when `name` is empty).

        Raises:
            UsageError: no such computation; the message lists the valid ones.
        """
        module = self.module(stage)
        if not name:
            return module.entry
        if name not in module.computations:
            names = list(module.computations)
            shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12
                                             else "")
            raise UsageError(f"No computation {name!r} in the {STAGE_TITLES[stage]} HLO. "
                             f"Computations are: {shown}.", "", f"computation={name!r}")
        return module.computations[name]


def _member_text(members: Any) -> str:
    counts: dict[str, int] = {}
    for m in members:
        counts[m.opcode] = counts.get(m.opcode, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{op} ×{n}" if n > 1 else op for op, n in ranked)


def _computed(members: Any) -> list[HloInstruction]:
    """Members that read data: not constants, nor broadcasts/reshapes of constants only."""
    constant: set[str] = set()
    out = []
    for m in members:
        if m.opcode in ("constant", "iota") or (m.operands and
                                                 all(o in constant for o in m.operands)):
            constant.add(m.name)
        else:
            out.append(m)
    return out


def _pass(inst: HloInstruction, members: Any) -> str:
    names = [inst.op_name, *(m.op_name for m in members)]
    backward = any(n.startswith(_BACKWARD) for n in names)
    forward = any(n and not n.startswith(_BACKWARD) and not n.startswith("XLA_")
                  for n in names)
    return "both" if backward and forward else "backward" if backward else \
        "forward" if forward else ""


def _fusion_index(comp: XlaCompilation, stage: str) -> dict[str, tuple[HloInstruction, ...]]:
    """`{fusion instruction name: its members}` (memoised on the compilation)."""
    if stage not in comp._fusions:
        comp._fusions[stage] = {f.instruction.name: f.members
                                for f in fusions(comp.modules[stage])}
    return comp._fusions[stage]


def _per_layer(comp: XlaCompilation, stage: str) -> dict[str, list[HloInstruction]]:
    out: dict[str, list[HloInstruction]] = {}
    for c in executed_computations(comp.modules[stage]):
        for inst in c.instructions:
            owners: list[str] = []
            for layer in comp.layers_of(inst, stage):  # a nested model owns its layers' ops
                parts = layer.split("/")
                owners += ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
            for layer in dict.fromkeys(owners):
                out.setdefault(layer, []).append(inst)
    return out
