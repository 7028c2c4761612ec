"""Blocks of a layer graph: repeating name prefixes and nested models, each shown as one box.

Big models repeat a block of layers, named with a common prefix (ResNet50's
`conv2_block1_1_conv` ... `conv2_block1_out`, MobileNetV2's `block_3_expand` ...
`block_3_project_BN`), and models used as layers are blocks too. `layer_blocks` finds them,
from the names and edges alone (no TensorFlow), as a tree: ResNet's stage `conv2` holds
`conv2_block1` to `conv2_block3`. `collapse` draws each collapsed block as one node; expanding
a block shows what it holds (its inner blocks still collapsed). `find_layers` is the search.

A prefix is a group when it is a whole number of `_`-separated parts of the names and ends in
a numbered part (`conv2`, `block1`, `3`: letters then digits) or has two parts or more
(`expanded_conv`), when it holds at least `min_layers` layers, and when no path leaves it
and comes back (collapsing it keeps the graph acyclic). Keras' own names (`dense_1`,
`conv2d_3`) are never groups.

Example:

>>> from insight.model.graph import GraphNode, LayerGraph
>>> names = ["x"] + [f"block{b}_{k}" for b in (1, 2) for k in ("conv", "bn", "relu", "out")]
>>> g = LayerGraph([GraphNode(n, n, "Layer") for n in names], list(zip(names, names[1:])))
>>> [(b.id, len(b.layers)) for b in layer_blocks(g)]
[('block1', 4), ('block2', 4)]
>>> [n.id for n in collapse(g, layer_blocks(g), expand=["block2"]).nodes]
['x', 'block1', 'block2_conv', 'block2_bn', 'block2_relu', 'block2_out']
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from insight.errors import UsageError
from insight.model.graph import GraphNode, LayerGraph

__all__ = ["LayerBlock", "COLLAPSE_ABOVE", "layer_blocks", "collapse", "find_layers"]

COLLAPSE_ABOVE = 60  # layers: bigger graphs open with their blocks collapsed
_NUMBERED = re.compile(r"^[A-Za-z]*\d+$")


@dataclass(frozen=True)
class LayerBlock:
    """A group of layers drawn as one box while collapsed.

    Attributes:
        id: `"conv2_block1"`; inside a nested model, its path first (`"backbone/block_3"`);
            a nested model's id is its path (`"backbone"`).
        kind: `"prefix"` (a name prefix) or `"model"` (a nested model).
        label: `"conv2_block1_*"`, or the model's `"backbone (Sequential)"`.
        parent: the id of the block holding it, `""` at the top.
        layers: the ids of every layer inside, in graph order.
    """

    id: str
    kind: str
    label: str
    parent: str
    layers: tuple[str, ...]


def _parent_path(path: str) -> str:
    return path.rpartition("/")[0]


def _prefixes(name: str) -> list[str]:
    """Candidate group prefixes of a name, shortest first."""
    parts = name.split("_")
    return ["_".join(parts[:k]) for k in range(1, len(parts))
            if k >= 2 or _NUMBERED.match(parts[k - 1])]


def _convex(members: set[str], succs: dict[str, list[str]]) -> bool:
    """Whether no path leaves `members` and comes back."""
    stack = [s for m in members for s in succs[m] if s not in members]
    seen: set[str] = set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        for s in succs[n]:
            if s in members:
                return False
            if s not in seen:
                stack.append(s)
    return True


def layer_blocks(graph: LayerGraph, *, min_layers: int = 4) -> list[LayerBlock]:
    """The blocks of a layer graph, outer blocks before the blocks they hold.

    Args:
        graph: a `LayerGraph` (from `insight.model.graph.layer_graph`).
        min_layers: the fewest layers a name-prefix block holds. Defaults to `4`.

    Returns:
        Nested models and name-prefix groups as `LayerBlock`s (empty for an unknown graph).
    """
    order = {n.id: i for i, n in enumerate(graph.nodes)}
    succs: dict[str, list[str]] = defaultdict(list)
    for a, b in graph.edges:
        succs[a].append(b)
    below: dict[str, list[str]] = defaultdict(list)  # scope -> every layer inside it
    for n in graph.nodes:
        scope = n.cluster
        while True:
            below[scope].append(n.id)
            if not scope:
                break
            scope = _parent_path(scope)
    blocks: list[LayerBlock] = []
    for scope in sorted({"", *graph.clusters}, key=lambda p: (p.count("/"), p != "", p)):
        # Entities of a scope: its own layers and the models nested in it.
        entities = {n.name: [n.id] for n in graph.nodes if n.cluster == scope}
        entities |= {p.rpartition("/")[2]: below[p] for p in graph.clusters
                     if _parent_path(p) == scope}
        groups: dict[frozenset[str], str] = {}
        for prefix in sorted({p for name in entities for p in _prefixes(name)}):
            names = frozenset(e for e in entities if e == prefix or e.startswith(prefix + "_"))
            layers = {i for e in names for i in entities[e]}
            if (len(names) < 2 or len(names) == len(entities) or len(layers) < min_layers
                    or not _convex(layers, succs)):
                continue
            if len(prefix) > len(groups.get(names, "")):
                groups[names] = prefix  # the same layers: the longest prefix names them
        base = f"{scope}/" if scope else ""
        model = [LayerBlock(scope, "model", graph.clusters[scope], "", tuple(below[scope]))] \
            if scope else []
        found = []
        for names, prefix in groups.items():
            if f"{base}{prefix}" in graph.clusters:
                continue  # a nested model already has that id
            layers = sorted({i for e in names for i in entities[e]}, key=order.__getitem__)
            found.append(LayerBlock(f"{base}{prefix}", "prefix", f"{prefix}_*", scope,
                                    tuple(layers)))
        blocks += model + found
    return _with_parents(blocks, order)


def _with_parents(blocks: list[LayerBlock], order: dict[str, int]) -> list[LayerBlock]:
    """Each block's parent: the smallest block holding all its layers; outer blocks first."""
    sets = {b.id: set(b.layers) for b in blocks}
    out = []
    for b in blocks:
        holders = [o for o in blocks if sets[b.id] < sets[o.id]]
        parent = min(holders, key=lambda o: len(o.layers)).id if holders else ""
        out.append(replace(b, parent=parent))
    depth: dict[str, int] = {}

    def level(block_id: str) -> int:
        if block_id not in depth:
            parent = next(b.parent for b in out if b.id == block_id)
            depth[block_id] = 0 if not parent else level(parent) + 1
        return depth[block_id]

    return sorted(out, key=lambda b: (level(b.id), order[b.layers[0]] if b.layers else 0))


def _model_class(label: str) -> str:
    """`"backbone (Sequential)"` -> `"Sequential"`."""
    inner = label.rpartition(" (")[2]
    return inner[:-1] if inner.endswith(")") else "Model"


def collapse(graph: LayerGraph, blocks: list[LayerBlock], expand: Iterable[str] = ()
             ) -> LayerGraph:
    """The graph with every block collapsed into one node, except those in `expand`.

    A collapsed block's node has the block's id, `kind="block"` (or `"model"`), the number of
    layers it holds, the output shape of its last layer that feeds the rest of the graph, and
    the sum of their parameters. Expanding a block also expands the blocks around it.

    Args:
        graph: the full layer graph.
        blocks: its blocks (`layer_blocks(graph)`).
        expand: ids of the blocks to show open. Defaults to `()`.

    Returns:
        A new `LayerGraph`; edges between a block's layers disappear, edges into and out of
        it end at its node.

    Raises:
        UsageError: an id in `expand` is not a block; the message lists the blocks.
    """
    by_id = {b.id: b for b in blocks}
    expand = [e for e in dict.fromkeys(expand) if e]
    unknown = [e for e in expand if e not in by_id]
    if unknown:
        raise UsageError(f"No such block: {unknown[0]!r}. The blocks are: "
                         f"{', '.join(by_id) or '(none)'}.",
                         "Expand a block by its id: a name prefix (conv2_block1) or the path of "
                         "a nested model.", f"expand={','.join(expand)!r}")
    opened: set[str] = set()
    for e in expand:
        while e and e not in opened:
            opened.add(e)
            e = by_id[e].parent
    while True:
        result = _collapsed(graph, blocks, opened)
        stuck = _cycle_blocks(result)
        if not stuck:
            return result
        opened.add(stuck[0])  # rare: two blocks feeding each other; open one


def _collapsed(graph: LayerGraph, blocks: list[LayerBlock], opened: set[str]) -> LayerGraph:
    shut = [b for b in blocks if b.id not in opened and _visible(b, blocks, opened)]
    rep = {layer: b for b in shut for layer in b.layers}
    by_id = {n.id: n for n in graph.nodes}
    nodes: list[GraphNode] = []
    for n in graph.nodes:
        block = rep.get(n.id)
        if block is None:
            nodes.append(n)
        elif block.layers[0] == n.id:
            nodes.append(_block_node(block, [by_id[i] for i in block.layers], graph.edges))
    edges = list(dict.fromkeys(
        (rep[a].id if a in rep else a, rep[b].id if b in rep else b) for a, b in graph.edges))
    hidden = {b.id for b in shut if b.kind == "model"}
    clusters = {p: label for p, label in graph.clusters.items()
                if not any(p == h or p.startswith(h + "/") for h in hidden)}
    return LayerGraph(nodes, [(a, b) for a, b in edges if a != b], clusters, graph.known,
                      graph.reason)


def _visible(block: LayerBlock, blocks: list[LayerBlock], opened: set[str]) -> bool:
    parents = {b.id: b.parent for b in blocks}
    p = block.parent
    while p:
        if p not in opened:
            return False
        p = parents[p]
    return True


def _block_node(block: LayerBlock, members: list[GraphNode], edges: list[tuple[str, str]]
                ) -> GraphNode:
    inside = set(block.layers)
    exits = [a for a, b in edges if a in inside and b not in inside]
    last = next((m for m in reversed(members) if m.id in exits), members[-1])
    roles = {m.role for m in members}
    role = "output" if "output" in roles else "input" if "input" in roles else ""
    params = None if any(m.params is None for m in members) else sum(
        m.params or 0 for m in members)
    name = block.id.rpartition("/")[2]
    cls = _model_class(block.label) if block.kind == "model" else "Block"
    return GraphNode(block.id, name, cls, last.shape, params, _parent_path(block.id), role,
                     kind="model" if block.kind == "model" else "block", layers=len(members))


def _cycle_blocks(graph: LayerGraph) -> list[str]:
    """Collapsed nodes left over when the graph is sorted topologically (none: acyclic)."""
    indegree = {n.id: 0 for n in graph.nodes}
    succs: dict[str, list[str]] = defaultdict(list)
    for a, b in graph.edges:
        succs[a].append(b)
        indegree[b] += 1
    ready = [n for n, d in indegree.items() if d == 0]
    while ready:
        n = ready.pop()
        for m in succs[n]:
            indegree[m] -= 1
            if indegree[m] == 0:
                ready.append(m)
    return [n.id for n in graph.nodes if indegree[n.id] > 0 and n.kind != "layer"]


def find_layers(graph: LayerGraph, text: str) -> list[str]:
    """Layers whose path contains `text` (any case), best first: the exact path, the exact
    name, names that start with it, then the rest in graph order.

    >>> from insight.model.graph import GraphNode, LayerGraph
    >>> g = LayerGraph([GraphNode(i, i.rpartition("/")[2], "Dense")
    ...                 for i in ("dense", "m/dense_1", "my_dense")])
    >>> find_layers(g, "DENSE_1"), find_layers(g, "dense")
    (['m/dense_1'], ['dense', 'm/dense_1', 'my_dense'])
    """
    text = text.strip().lower()
    if not text:
        return []
    hits = [n for n in graph.nodes if text in n.id.lower()]

    def score(item: tuple[int, GraphNode]) -> tuple[int, int]:
        i, n = item
        best = (0 if n.id.lower() == text else 1 if n.name.lower() == text
                else 2 if n.name.lower().startswith(text) else 3)
        return best, i

    return [n.id for _, n in sorted(enumerate(hits), key=score)]
