"""Graph-to-graph rewrites before scheduling: decompose composites, canonicalize
views, fold trivial ones, and merge structurally equal nodes (CSE).

A pure function of the graph: returns new nodes, never mutates the old ones.
Leaves (realized inputs, params, consts) are kept as they are.
"""

from __future__ import annotations

from .graph import Node
from .graph import _ids as graph_ids
from .ops import OPS, IREmitter, make
from .walk import postorder, use_counts

# Views whose index rewrite is a reshape, permute, slice or select under another name.
_AS_RESHAPE = {"squeeze", "unsqueeze", "unsafe_view"}
_AS_PERMUTE = {"transpose", "t"}
_RENAMED = {"split": "slice", "unbind": "select", "clone": None, "alias": None}


def simplify(targets: list[Node]) -> list[Node]:
    """Return the simplified node for each target."""
    memo: dict[int, Node] = {}
    table: dict[tuple, Node] = {}
    emit = IREmitter()

    def key_of(node: Node) -> tuple | None:
        if node.op.kind == "leaf":
            if node.op.name == "const":
                return ("const", repr(node.attrs["value"]), node.dtype.name)
            return None  # buffers and params are distinct by identity
        return (node.op.name, tuple(node.attrs.items()), tuple(s.id for s in node.srcs))

    def intern(node: Node) -> Node:
        key = key_of(node)
        if key is None:
            return node
        return table.setdefault(key, node)

    uses = use_counts(targets)

    def rebuild(node: Node, srcs: tuple) -> Node:
        op = node.op
        swapped = _transposed_product(node, srcs[0]) if op.kind == "movement" else None
        if swapped is not None and uses.get(node.srcs[0].id, 0) == 1:
            # (a @ b).T = b.T @ a.T: the product is written in the wanted layout (the transposes
            # are index arithmetic in its packing) instead of being copied afterwards.
            a, b = swapped
            dims = tuple(range(len(a.shape) - 2)) + (len(a.shape) - 1, len(a.shape) - 2)
            flip = lambda x: fold_view(make("permute", (x,), {"dims": dims}))  # noqa: E731
            return fold_view(make(srcs[0].op, (flip(b), flip(a)), {}))  # (the product under folded views)
        if op.kind == "composite":  # its decomposition may hold composites too
            return visit(op.decompose(emit, srcs, node.attrs))
        if op.name in _AS_RESHAPE:
            return fold_view(make("reshape", srcs, {"shape": node.shape}))
        if op.name in _AS_PERMUTE:
            return fold_view(make("permute", srcs, {"dims": node.attrs["dims"]}))
        if op.name in _RENAMED:
            target = _RENAMED[op.name]
            return srcs[0] if target is None else fold_view(make(target, srcs, node.attrs))
        if all(a is b for a, b in zip(srcs, node.srcs)):
            return fold_view(node)
        return fold_view(make(op, srcs, node.attrs))

    def fold_view(node: Node) -> Node:
        name = node.op.name
        if name in ("reshape", "expand") and node.srcs[0].shape == node.shape:
            return node.srcs[0]
        if name == "permute":
            dims = node.attrs["dims"]
            if dims == tuple(range(len(dims))):
                return node.srcs[0]
            src = node.srcs[0]
            if src.op.name == "permute" and not src.realized:
                inner = src.attrs["dims"]
                return fold_view(make("permute", (src.srcs[0],), {"dims": tuple(inner[d] for d in dims)}))
        if name == "reshape":
            src = node.srcs[0]
            if src.op.name == "reshape" and not src.realized:
                return fold_view(make("reshape", (src.srcs[0],), {"shape": node.shape}))
        return intern(node)

    first_new = next(graph_ids)  # nodes made from here on are this call's own

    def inherit(new: Node, old: Node) -> Node:
        # A node made here stands for `old`: it keeps the user's source line and the backward
        # mark, for dumps (nodes of the input graph are never touched).
        if new.id >= first_new and new.loc is None:
            new.loc, new.backward = old.loc, old.backward
        return new

    def visit(root: Node) -> Node:
        for node in postorder([root], stop=lambda n: n.id in memo):
            if node.id in memo:
                continue
            if node.buffer is not None or not node.srcs:
                memo[node.id] = intern(node) if node.buffer is None else node
            else:
                memo[node.id] = inherit(rebuild(node, tuple(memo[s.id] for s in node.srcs)), node)
        return memo[root.id]

    roots = [visit(t) for t in targets]
    memo.clear()  # the closures above form a cycle: don't let it hold this graph until a GC
    table.clear()
    return roots


__all__ = ["simplify", "OPS"]


def _transposed_product(node: Node, src: Node):
    """The operands (a, b) when `node` swaps the last two dims of a pending a @ b, else None."""
    if node.op.name not in ("permute", "transpose", "t") or src.op.name not in ("mm", "bmm"):
        return None
    if src.buffer is not None:
        return None
    dims = node.attrs["dims"]
    n = len(dims)
    if dims != tuple(range(n - 2)) + (n - 1, n - 2):
        return None
    return src.srcs

