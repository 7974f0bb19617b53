"""The canonical form of a graph: the cache key of its compiled program.

A graph is keyed by one entry per node, in an order where sources come first:
realized buffers by shape and dtype only, Python scalars (params) by dtype
only, constants by value, every other node by its op, attributes and sources
by position. Two graphs with the same key compute the same function of their
inputs and params, so they share one compiled program. `entry_of` is the one
definition of an entry: `canonicalize` walks a graph with it, and a thread's
pending segment (runtime/pending.py) builds the same entries as ops are recorded.
"""

from __future__ import annotations

from .graph import Node
from .walk import postorder


def entry_of(node: Node, refs: tuple) -> tuple:
    """The key entry of `node`, its sources given by position (`refs`)."""
    if node.buffer is not None:
        return ("in", node.shape, node.dtype.name)
    if refs:
        return (node.op.name, tuple(node.attrs.items()) if node.attrs else (), refs)
    name = node.op.name
    if name == "param":
        return ("param", node.dtype.name)
    if name == "const":
        # repr keeps -0.0 and 0.0 (equal as floats) apart.
        return ("const", repr(node.attrs["value"]), node.dtype.name)
    return (name, tuple(node.attrs.items()))


def canonicalize(targets: list[Node]) -> tuple[tuple, list[Node], list[Node]]:
    """(key, input nodes in slot order, param nodes in slot order)."""
    ids: dict[int, int] = {}
    parts: list = []
    inputs: list[Node] = []
    params: list[Node] = []
    for node in postorder(targets):
        if node.buffer is not None:
            inputs.append(node)
        elif not node.srcs and node.op.name == "param":
            params.append(node)
        refs = tuple(ids[s.id] for s in node.srcs) if node.buffer is None else ()
        parts.append(entry_of(node, refs))
        ids[node.id] = len(ids)
    key = (tuple(parts), tuple(ids[t.id] for t in targets))
    return key, inputs, params
