"""Read XLA's HLO text: computations, instructions, fusions, opcode counts.

HLO text is what `tf.function(..., jit_compile=True).experimental_get_compiler_ir(...)` returns
(and what `--xla_dump_to` writes): a module of computations, each a list of instructions

```
%fused_computation.3 (param_0.9: f32[32,32], param_1.11: f32[32]) -> f32[32,32] { ... }
ENTRY %main (arg0.1: f32[32,8,8,1], ...) -> f32[32,10] {
  %MatMul.4 = f32[32,32]{1,0} dot(%fusion.1, %arg5.1), ..., metadata={op_type="MatMul"
      op_name="digits_cnn_1/dense1_1/MatMul" source_file=... source_line=1221}
  ROOT %divide_fusion = f32[32,10]{1,0} fusion(%a, %b), kind=kLoop, calls=%fused_computation
}
```

Both spellings of operands are read: with their types (`add(f32[] %a, f32[] %b)`, before
optimisation) and without (`add(%a, %b)`, after). This module knows nothing of TensorFlow or
Keras; `insight.compiler.xla` maps `op_name` back to layers.

Example:

>>> text = '''HloModule m
... ENTRY %main (p: f32[2]) -> f32[2] {
...   %p = f32[2]{0} parameter(0)
...   ROOT %n = f32[2]{0} negate(f32[2]{0} %p), metadata={op_type="Neg" op_name="m/neg/Neg"}
... }'''
>>> module = parse_hlo(text)
>>> [(i.name, i.opcode, i.operands, i.op_name) for i in module.entry.instructions][1]
('n', 'negate', ('p',), 'm/neg/Neg')
>>> op_counts(module)
{'negate': 1, 'parameter': 1}
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from insight.errors import UsageError

__all__ = ["HloInstruction", "HloComputation", "HloModule", "parse_hlo", "op_counts",
           "fusions", "Fusion", "executed_computations"]

_COMMENT = re.compile(r"/\*.*?\*/")
_HEADER = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s*(\(.*)?\{\s*$")
_CALLED = re.compile(
    r"\b(calls|to_apply|body|condition|true_computation|false_computation|"
    r"branch_computations|called_computations)=(\{[^}]*\}|%?[\w.\-]+)")
_KIND = re.compile(r"\bkind=(k\w+)")
_META_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s}]+)')
# Computations reached through these attributes run as a whole (control flow, calls);
# through the others (to_apply of reduce, map, sort, scatter) they are per-element lambdas.
_CONTROL = {"body", "condition", "true_computation", "false_computation",
            "branch_computations"}


@dataclass(frozen=True)
class HloInstruction:
    """One HLO instruction.

    Attributes:
        name: its name without `%` (`"MatMul.4"`).
        opcode: `"dot"`, `"fusion"`, `"parameter"`...
        shape: its result type as printed (`"f32[32,32]{1,0}"`, or a tuple `"(f32[], s32[])"`).
        operands: names of the instructions it reads, in order.
        computation: the computation it belongs to.
        op_type: the TensorFlow op it came from (`"MatMul"`), if recorded.
        op_name: the TensorFlow op's full name, name scopes included, if recorded.
        calls: computations it calls (a fusion's body, a reduce's reducer...).
        call_kinds: the attribute naming each of `calls` (`"calls"`, `"to_apply"`...).
        kind: a fusion's kind (`"kLoop"`, `"kOutput"`...), else `""`.
        root: whether it is its computation's ROOT.
        text: the line as printed (comments removed).
    """

    name: str
    opcode: str
    shape: str
    operands: tuple[str, ...]
    computation: str
    op_type: str = ""
    op_name: str = ""
    calls: tuple[str, ...] = ()
    call_kinds: tuple[str, ...] = ()
    kind: str = ""
    root: bool = False
    text: str = ""


@dataclass
class HloComputation:
    """A named computation: its instructions in order and whether it is the entry."""

    name: str
    instructions: list[HloInstruction] = field(default_factory=list)
    is_entry: bool = False
    header: str = ""

    def text(self) -> str:
        """The computation printed back as HLO text."""
        body = "\n".join(f"  {i.text}" for i in self.instructions)
        return f"{self.header}\n{body}\n}}"


@dataclass
class HloModule:
    """A parsed HLO module.

    Attributes:
        name: the module name (`HloModule NAME, ...`).
        computations: by name, in the order printed.
    """

    name: str
    computations: dict[str, HloComputation]

    @property
    def entry(self) -> HloComputation:
        """The ENTRY computation."""
        return next(c for c in self.computations.values() if c.is_entry)

    def instructions(self) -> list[HloInstruction]:
        """Every instruction of every computation."""
        return [i for c in self.computations.values() for i in c.instructions]

    def instruction(self, name: str) -> HloInstruction:
        """The instruction called `name` (names are unique in a module).

        Raises:
            UsageError: no such instruction.
        """
        found = next((i for i in self.instructions() if i.name == name), None)
        if found is None:
            raise UsageError(f"No HLO instruction named {name!r} in module {self.name!r}.",
                             "Pick a name from the instruction table.", f"name={name!r}")
        return found


def _matching(text: str, start: int, open_: str, close: str) -> int:
    """Index of the bracket closing the one at `start` (quotes respected)."""
    depth, quoted, i = 0, False, start
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == open_:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(text) - 1


def _split_top(text: str) -> list[str]:
    """Split at commas outside brackets, braces and parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _metadata(attrs: str) -> dict[str, str]:
    at = attrs.find("metadata={")
    if at < 0:
        return {}
    start = at + len("metadata=")
    body = attrs[start + 1:_matching(attrs, start, "{", "}")]
    return {k: v[1:-1] if v.startswith('"') else v for k, v in _META_PAIR.findall(body)}


def _instruction(line: str, computation: str) -> HloInstruction | None:
    root = line.startswith("ROOT ")
    if root:
        line = line[5:]
    name, sep, rest = line.partition(" = ")
    if not sep:
        return None
    rest = rest.strip()
    if rest.startswith("("):
        end = _matching(rest, 0, "(", ")")
        shape, rest = rest[:end + 1], rest[end + 1:].lstrip()
    else:
        shape, _, rest = rest.partition(" ")
    paren = rest.find("(")
    if paren < 0:
        return None
    opcode = rest[:paren].strip()
    close = _matching(rest, paren, "(", ")")
    args, attrs = rest[paren + 1:close], rest[close + 1:]
    operands = () if opcode in ("constant", "parameter") else tuple(
        a.split()[-1].lstrip("%") for a in _split_top(args))
    called = [(k, v) for k, v in _CALLED.findall(attrs)]
    calls, kinds = [], []
    for key, value in called:
        for target in value.strip("{}").split(","):
            if target.strip():
                calls.append(target.strip().lstrip("%"))
                kinds.append(key)
    meta = _metadata(attrs)
    kind = _KIND.search(attrs)
    return HloInstruction(
        name=name.strip().lstrip("%"), opcode=opcode, shape=shape, operands=operands,
        computation=computation, op_type=meta.get("op_type", ""),
        op_name=meta.get("op_name", ""), calls=tuple(calls), call_kinds=tuple(kinds),
        kind=kind.group(1) if kind and opcode == "fusion" else "", root=root,
        text=("ROOT " if root else "") + line.strip())


def parse_hlo(text: str) -> HloModule:
    """Parse HLO text into an `HloModule`.

    Args:
        text: the module as printed by XLA (`HloModule ...` then computations).

    Raises:
        UsageError: the text holds no computation (not HLO text).
    """
    name, computations, current = "", {}, None
    for raw in text.splitlines():
        line = _COMMENT.sub("", raw).rstrip()
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("HloModule "):
            name = stripped.split()[1].rstrip(",")
        elif current is None:
            match = _HEADER.match(stripped)
            if match:
                current = HloComputation(match.group(2), is_entry=bool(match.group(1)),
                                         header=stripped)
        elif stripped == "}":
            computations[current.name] = current
            current = None
        else:
            inst = _instruction(stripped, current.name)
            if inst is not None:
                current.instructions.append(inst)
    if not computations:
        raise UsageError("This text holds no HLO computation.",
                         "Pass HLO text as printed by XLA (it starts with 'HloModule').",
                         f"text={text[:60]!r}")
    if not any(c.is_entry for c in computations.values()):
        next(reversed(computations.values())).is_entry = True  # XLA prints ENTRY last
    return HloModule(name, computations)


def _roles(module: HloModule) -> dict[str, str]:
    """`{computation: "entry" | "control" | "fused" | "applied"}`."""
    roles = {module.entry.name: "entry"}
    for inst in module.instructions():
        for target, key in zip(inst.calls, inst.call_kinds, strict=True):
            if key in _CONTROL or (key == "calls" and inst.opcode != "fusion"):
                role = "control"
            elif key == "calls":
                role = "fused"
            else:
                role = "applied"
            roles.setdefault(target, role)
    return roles


def executed_computations(module: HloModule) -> list[HloComputation]:
    """The computations that run as a whole: the entry and control flow (while bodies,
    conditional branches, calls), not fusion bodies nor per-element reducers."""
    roles = _roles(module)
    return [c for c in module.computations.values()
            if roles.get(c.name, "control") in ("entry", "control")]


def op_counts(module: HloModule) -> dict[str, int]:
    """Instructions by opcode in the computations that run (a fusion counts once, as
    `fusion`; its members are not counted), sorted by opcode."""
    counts = Counter(i.opcode for c in executed_computations(module) for i in c.instructions)
    return dict(sorted(counts.items()))


@dataclass(frozen=True)
class Fusion:
    """A fusion instruction and what XLA fused into it.

    Attributes:
        instruction: the `fusion` instruction.
        computation: the fused computation it calls.
        members: the fused instructions (parameters left out; nested fusions expanded).
    """

    instruction: HloInstruction
    computation: str
    members: tuple[HloInstruction, ...]

    @property
    def member_counts(self) -> dict[str, int]:
        """Member opcodes and how often each occurs, most frequent first."""
        return dict(Counter(m.opcode for m in self.members).most_common())


def _members(module: HloModule, computation: str) -> list[HloInstruction]:
    out = []
    for inst in module.computations[computation].instructions:
        if inst.opcode == "parameter":
            continue
        if inst.opcode == "fusion" and inst.calls and inst.calls[0] in module.computations:
            out += _members(module, inst.calls[0])
        else:
            out.append(inst)
    return out


def fusions(module: HloModule) -> list[Fusion]:
    """Every fusion in the computations that run, in program order."""
    found = []
    for comp in executed_computations(module):
        for inst in comp.instructions:
            if inst.opcode == "fusion" and inst.calls and inst.calls[0] in module.computations:
                found.append(Fusion(inst, inst.calls[0],
                                    tuple(_members(module, inst.calls[0]))))
    return found
