"""The layered (Sugiyama) layout the layer graph and the HLO graph share, through igraph.

igraph's `Graph.layout_sugiyama` orders each rank to reduce crossings, places the nodes and
puts a dummy vertex on every edge at each rank it passes: an edge spanning several ranks is
drawn as a polyline through those points, which sit in free slots of their ranks, so it goes
around the boxes instead of through them. The ranks are ours: the longest path from an input,
then nodes with slack (a side branch, a second input) pulled down next to their first consumer
so their edges stay short.

Example:

>>> lay = sugiyama_layout(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("c", "d"),
...                                               ("a", "d")])
>>> lay.pos["a"][1], lay.pos["d"][1], [r for _, r in lay.routes[("a", "d")]]
(0, 3, [1, 2])
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

__all__ = ["GraphLayout", "sugiyama_layout"]


@dataclass(frozen=True)
class GraphLayout:
    """Where a layered layout puts things.

    Attributes:
        pos: `{node: (x, rank)}`; x centred on 0, neighbours in a rank at least 1 apart;
            rank 0 at the top.
        routes: `{(src, dst): [(x, rank), ...]}`: the dummy points of an edge that spans more
            than one rank, top to bottom (edges between adjacent ranks have none).
    """

    pos: dict[str, tuple[float, int]] = field(default_factory=dict)
    routes: dict[tuple[str, str], list[tuple[float, int]]] = field(default_factory=dict)

    @property
    def ranks(self) -> int:
        """How many ranks the layout has."""
        return max((r for _, r in self.pos.values()), default=-1) + 1


def _ranks(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        preds[b].append(a)
        succs[a].append(b)
    indegree = {n: len(preds[n]) for n in nodes}
    order = [n for n in nodes if indegree[n] == 0]
    rank = dict.fromkeys(nodes, 0)
    i = 0
    while i < len(order):
        n = order[i]
        i += 1
        for m in succs[n]:
            rank[m] = max(rank[m], rank[n] + 1)
            indegree[m] -= 1
            if indegree[m] == 0:
                order.append(m)
    # Then pull every node with slack down next to its first consumer (a side branch, a
    # second input), so its edges stay short; the longest chain does not move.
    for n in reversed(order):
        if succs[n]:
            rank[n] = max(rank[n], min(rank[m] for m in succs[n]) - 1)
    return rank


def _acyclic(nodes: list[str], edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`edges` less those that close a cycle (found depth first, in the given order)."""
    succs: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        succs[a].append(b)
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    back: set[tuple[str, str]] = set()
    for root in nodes:
        if root in state:
            continue
        stack = [(root, iter(succs[root]))]
        state[root] = 1
        while stack:
            n, it = stack[-1]
            m = next(it, None)
            if m is None:
                state[n] = 2
                stack.pop()
            elif state.get(m) == 1:
                back.add((n, m))
            elif m not in state:
                state[m] = 1
                stack.append((m, iter(succs[m])))
    return [e for e in edges if e not in back]


def sugiyama_layout(nodes: list[str], edges: list[tuple[str, str]]) -> GraphLayout:
    """Lay out a directed graph in ranks, top to bottom, with routed long edges.

    Args:
        nodes: node ids, in a stable order (it breaks ties).
        edges: `(src, dst)` pairs. Layer and HLO graphs are acyclic; an edge that closes a
            cycle all the same is left out of the layout (and of `routes`).

    Returns:
        A `GraphLayout`: positions and the dummy points of long edges.
    """
    import igraph  # lazy: only figures of graphs need it

    known = set(nodes)
    edges = list(dict.fromkeys((a, b) for a, b in edges if a in known and b in known and a != b))
    edges = _acyclic(nodes, edges)
    if not nodes:
        return GraphLayout()
    rank = _ranks(nodes, edges)
    index = {n: i for i, n in enumerate(nodes)}
    graph = igraph.Graph(n=len(nodes), edges=[(index[a], index[b]) for a, b in edges],
                         directed=True)
    lay = graph.layout_sugiyama(layers=[rank[n] for n in nodes], hgap=1, vgap=1)
    xs = [c[0] for c in lay.coords[: len(nodes)]]
    xs += [p[0] for points in lay.edge_routing for p in points]
    shift = (min(xs) + max(xs)) / 2
    pos = {n: (lay.coords[i][0] - shift, rank[n]) for n, i in index.items()}
    routes = {(a, b): [(p[0] - shift, round(p[1])) for p in points]
              for (a, b), points in zip(edges, lay.edge_routing, strict=True) if len(points)}
    return GraphLayout(pos, routes)
