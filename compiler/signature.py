"""The canonical form of a graph: the cache key of its compiled program.

Walks the graph from the requested outputs in a fixed order and records, for
each node, its op, attributes and sources by position: realized buffers by
shape and dtype only, Python scalars (params) by dtype only. Two graphs with
the same key compute the same function of their inputs and params, so they
share one compiled program.
"""

from __future__ import annotations

from .graph import Node


def canonicalize(targets: list[Node]) -> tuple[tuple, list[Node], list[Node]]:
    """(key, input nodes in slot order, param nodes in slot order)."""
    ids: dict[int, int] = {}
    parts: list = []
    inputs: list[Node] = []
    params: list[Node] = []
    for root in targets:
        stack = [(root, False)]
        while stack:
            node, ready = stack.pop()
            if node.id in ids:
                continue
            if node.buffer is not None:
                parts.append(("in", node.shape, node.dtype.name))
                inputs.append(node)
            elif not node.srcs:
                if node.op.name == "param":
                    parts.append(("param", node.dtype.name))
                    params.append(node)
                elif node.op.name == "const":
                    # repr keeps -0.0 and 0.0 (equal as floats) apart.
                    parts.append(("const", repr(node.attrs["value"]), node.dtype.name))
                else:
                    parts.append((node.op.name, tuple(node.attrs.items())))
            elif not ready:
                stack.append((node, True))
                stack.extend((s, False) for s in reversed(node.srcs) if s.id not in ids)
                continue
            else:
                parts.append((node.op.name, tuple(node.attrs.items()),
                              tuple(ids[s.id] for s in node.srcs)))
            ids[node.id] = len(ids)
    key = (tuple(parts), tuple(ids[t.id] for t in targets))
    return key, inputs, params
