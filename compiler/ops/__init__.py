"""The op table: every operation llgrad knows, each defined in one place.

An entry (`OpDef`) carries the op's shape and dtype rule, its vector-Jacobian
product written in IR ops, the values that VJP saves, PyTorch's name for its
backward node, and its lowering (a scalar LLVM lowering for elementwise ops,
an index rewrite for views, a decomposition into other ops for composites).
The modules of this package register their entries into `OPS`.

`make` builds a node, running the op's rule; `IREmitter` lets VJP rules and
decompositions build nodes by op name (`e.mul(a, b)`), the same spelling the
frontend's emitter uses when the backward pass must itself be differentiable.
"""

from __future__ import annotations

from typing import Any

from .. import dtypes
from ..graph import Node, OpDef

OPS: dict[str, OpDef] = {}

# The one NaN an attribute holds. NaN != NaN and each NaN object hashes apart, so a NaN
# attribute (x ** float('nan')) made every call's cache key new: a recompile per call.
NAN = float("nan")


def canonical_attrs(attrs: dict) -> dict:
    """`attrs` (a dict of its own) with every NaN replaced by the one NAN."""
    for k, v in attrs.items():
        if type(v) is float and v != v:
            attrs[k] = NAN
    return attrs


_listeners: list = []  # called with each op registered (the frontend exposes public ops)


def register(op: OpDef) -> OpDef:
    if op.name in OPS:
        raise ValueError(f"op {op.name} defined twice")
    OPS[op.name] = op
    for listener in _listeners:
        listener(op)
    return op


def on_register(listener) -> None:
    """Call `listener(op)` for every op registered so far and from now on."""
    _listeners.append(listener)
    for op in list(OPS.values()):
        listener(op)


def make(op: OpDef | str, srcs: tuple, attrs: dict | None = None) -> Node:
    """Build a node of `op`, converting Python numbers to constants."""
    if isinstance(op, str):
        op = OPS[op]
    for s in srcs:
        if not isinstance(s, Node):
            srcs = tuple(s if isinstance(s, Node) else const(s) for s in srcs)
            break
    else:
        srcs = tuple(srcs)
    attrs = canonical_attrs(dict(attrs)) if attrs else {}
    shape, dtype = op.infer(srcs, attrs)
    if len(attrs) > 1:
        attrs = dict(sorted(attrs.items()))  # canonical order: part of the cache key
    return Node(op, srcs, attrs, shape, dtype)


def const(value: Any, dtype: dtypes.DType | None = None) -> Node:
    """A 0-d compile-time constant; promotes like a Python scalar."""
    dtype = dtype or dtypes.scalar_dtype(value)
    return Node(OPS["const"], (), {"value": value, "dtype": dtype}, (), dtype)


def param(value: Any) -> Node:
    """A 0-d run-time scalar (a Python number the user wrote)."""
    dtype = dtypes.scalar_dtype(value)
    node = Node(OPS["param"], (), {}, (), dtype)
    node.value = value
    return node


def input_node(buffer: Any, shape: tuple, dtype: dtypes.DType) -> Node:
    node = Node(OPS["input"], (), {}, tuple(shape), dtype)
    node.buffer = buffer
    return node


class IREmitter:
    """Builds IR nodes by op name: `e.add(a, b)`, `e.sum(x, dims=(0,), keepdim=True)`.

    VJP rules and decompositions are written against this interface. Nodes it
    makes are marked as backward nodes when `backward` is set.
    """

    def __init__(self, backward: bool = False) -> None:
        self.backward = backward

    def __getattr__(self, name: str):
        op = OPS[name]

        def emit(*srcs, **attrs) -> Node:
            node = make(op, srcs, attrs)
            node.backward = self.backward
            return node

        emit.__name__ = name
        return emit


def _leaf_infer(srcs, attrs):
    raise AssertionError("leaf nodes are built directly")


register(OpDef("input", "leaf", _leaf_infer))
register(OpDef("param", "leaf", _leaf_infer))
register(OpDef("const", "leaf", _leaf_infer))

# Entries register themselves on import; order is irrelevant.
# (random: rand_uniform; special: erf, gelu)
from . import composite, elementwise, indexing, linalg, movement, random, reduce, special  # noqa: E402,F401
