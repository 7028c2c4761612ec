"""A layered layout for layer graphs: ranks top to bottom, order within ranks by barycenters.

Small and deterministic (no Graphviz needed): rank = longest path from an input, then a few
sweeps that order each rank by the mean position of its neighbours, to keep edges short and
uncrossed on branchy models.

Example:

>>> pos = layered_layout(["a", "b", "c"], [("a", "b"), ("a", "c")])
>>> pos["a"][1], pos["b"][1] == pos["c"][1]
(0, True)
"""

from __future__ import annotations

from collections import defaultdict

__all__ = ["layered_layout"]


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


def _barycenter(n: str, r: int, pos: dict[str, float], rank: dict[str, int],
                neighbours: dict[str, list[str]]) -> tuple[float, float]:
    near = [pos[m] for m in neighbours[n] if rank[m] != r]
    return (sum(near) / len(near) if near else pos[n], pos[n])


def layered_layout(nodes: list[str], edges: list[tuple[str, str]], sweeps: int = 4
                   ) -> dict[str, tuple[float, int]]:
    """Positions `{node: (x, rank)}`: x centred on 0 in steps of 1, rank 0 at the top.

    Args:
        nodes: node ids, in a stable order (it breaks ties).
        edges: `(src, dst)` pairs; the graph must be acyclic (layer graphs are).
        sweeps: barycenter passes. Defaults to `4`.
    """
    known = set(nodes)
    edges = [(a, b) for a, b in edges if a in known and b in known and a != b]
    rank = _ranks(nodes, edges)
    rows: dict[int, list[str]] = defaultdict(list)
    for n in nodes:
        rows[rank[n]].append(n)
    neighbours: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    pos = {n: float(i) for r in rows.values() for i, n in enumerate(r)}
    for sweep in range(sweeps):
        ranks = sorted(rows) if sweep % 2 == 0 else sorted(rows, reverse=True)
        for r in ranks:
            rows[r].sort(key=lambda n, r=r: _barycenter(n, r, pos, rank, neighbours))
            for i, n in enumerate(rows[r]):
                pos[n] = float(i)
    out = {}
    for r, row in rows.items():
        offset = (len(row) - 1) / 2
        for i, n in enumerate(row):
            out[n] = (i - offset, r)
    return out
