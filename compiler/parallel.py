"""Making reductions splittable across cores.

A kernel runs in parallel by splitting its outer loop; a reduction of a whole
tensor has none. This rewrite turns a large full reduction into `PARTS`
partial reductions (an outer loop of PARTS iterations that threads share) and
a small final reduction of the partials:

    sum(x)  ->  sum(sum(reshape(x, (PARTS, n / PARTS)), dims=(1,)), dims=(0,))

Elementwise values of x's size still fuse into the partial kernel (the
scheduler matches them through the reshape), so the chain's forward, loss and
gradient remain one pass over memory.
"""

from __future__ import annotations

from .graph import Node
from .ops import make
from .ops.reduce import axes as reduce_axes
from .walk import rewrite

PARTS = 64
MIN_ELEMENTS = 1 << 16
_SPLITTABLE = {"sum", "max", "min", "prod", "amax", "amin"}


def split_reductions(roots: list[Node]) -> list[Node]:
    def rebuild(n: Node, srcs: tuple) -> Node:
        if not n.srcs:
            return n
        new = n if all(a is b for a, b in zip(srcs, n.srcs)) else make(n.op, srcs, n.attrs)
        return _split(new) if _worth_splitting(new) else new

    return rewrite(roots, rebuild)


def _worth_splitting(n: Node) -> bool:
    if n.op.kind != "reduce" or n.op.name not in _SPLITTABLE:
        return False
    src = n.srcs[0]
    every_axis = len(reduce_axes(n)) == len(src.shape)
    return every_axis and src.numel >= MIN_ELEMENTS and src.numel % PARTS == 0


def _split(n: Node) -> Node:
    src = n.srcs[0]
    parts = make("reshape", (src,), {"shape": (PARTS, src.numel // PARTS)})
    partial = make(n.op, (parts,), {"dims": (1,), "keepdim": False})
    total = make(n.op, (partial,), {"dims": (0,), "keepdim": False})
    if total.shape != n.shape:  # keepdim: restore the size-1 dims
        total = make("reshape", (total,), {"shape": n.shape})
    return total
