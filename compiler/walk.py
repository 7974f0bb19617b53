"""The one graph walk every pass uses: sources before the nodes that read them, each node once.

Iterative (an explicit stack): a pending graph can be 10,000 nodes deep. Computed values
(buffers) and leaves are listed but not entered; so are nodes `stop` says to treat as leaves.
"""

from __future__ import annotations

from collections.abc import Callable

from .graph import Node


def postorder(roots: list[Node], stop: Callable[[Node], bool] | None = None) -> list[Node]:
    """The nodes reachable from `roots`, each after all of its sources."""
    order: list[Node] = []
    seen: set[int] = set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            n, ready = stack.pop()
            if n.id in seen:
                continue
            if ready or n.buffer is not None or not n.srcs or (stop is not None and stop(n)):
                seen.add(n.id)
                order.append(n)
                continue
            stack.append((n, True))
            stack.extend((s, False) for s in reversed(n.srcs) if s.id not in seen)
    return order


def rewrite(roots: list[Node], rebuild: Callable[[Node, tuple], Node]) -> list[Node]:
    """A new graph: each node replaced by rebuild(node, its sources' replacements), sources
    first; leaves and buffers are kept. Returns the replacement of each root."""
    memo: dict[int, Node] = {}
    for n in postorder(roots):
        if n.buffer is not None or not n.srcs:
            memo[n.id] = rebuild(n, ()) if n.buffer is None else n
        else:
            memo[n.id] = rebuild(n, tuple(memo[s.id] for s in n.srcs))
    return [memo[r.id] for r in roots]


def use_counts(roots: list[Node]) -> dict[int, int]:
    """How many times each node is read (a root counts as one read)."""
    uses: dict[int, int] = {}
    for r in roots:
        uses[r.id] = uses.get(r.id, 0) + 1
    for n in postorder(roots):
        if n.buffer is None:
            for s in n.srcs:
                uses[s.id] = uses.get(s.id, 0) + 1
    return uses
