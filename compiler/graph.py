"""The graph IR: nodes recorded by the frontend, consumed by every compiler stage.

A `Node` is one operation on whole tensors: its op (an `OpDef` from the op
table), its source nodes, attributes, and the shape and dtype the op's rule
inferred. Leaves are realized buffers (`input`), run-time scalars (`param`,
so that a changed learning rate does not recompile) and compile-time
constants (`const`). Once a node is computed, its buffer is attached and its
sources are dropped: later graphs read it as an input.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from . import dtypes

Shape = tuple[int, ...]

_ids = itertools.count()


class OpDef:
    """One entry of the op table. Every stage reads what it needs from here.

    kind:       "leaf", "elementwise", "reduce", "movement", "matmul" or "composite"
    infer:      (srcs, attrs) -> (shape, dtype); raises the user-facing error
    vjp:        (emit, grad, ctx) -> one gradient (or None) per source
    saves:      {source index: (what the VJP of that source reads)} where an
                entry is a source index, "out", or ("value", index) for a snapshot
                of the source that in-place changes do not invalidate; decides which
                saved values a second backward needs (or a function of attrs giving that)
    grad_fn:    PyTorch's name for the backward node, or a function of attrs
    edges:      which sources appear in grad_fn.next_functions (default: all)
    public:     the PyTorch name of a unary elementwise op the frontend exposes as is
                (`torch.exp`, `Tensor.exp`, `Tensor.exp_`); None for the rest
    scalar:     elementwise: its rule on one element, (s, args, compute dtype, attrs) -> value,
                written once against the scalar builder `s` (compiler/scalar.py) that both
                LLVM codegen and the MLIR printers implement
    compute:    elementwise: (srcs) -> dtype the scalar op runs in
    reduce:     reduce: combine kind ("sum", "max", "min", "argmax", "argmin")
    index:      movement: (out index, src shape, attrs) -> src index
    decompose:  composite: (emit, srcs, attrs) -> equivalent node of other ops
    """

    __slots__ = (
        "name", "kind", "infer", "vjp", "saves", "grad_fn", "edges", "scalar", "public",
        "compute", "reduce", "index", "decompose", "doc",
    )

    def __init__(self, name: str, kind: str, infer: Callable, **fields: Any) -> None:
        self.name = name
        self.kind = kind
        self.infer = infer
        for f in self.__slots__[3:]:
            setattr(self, f, fields.pop(f, None))
        if fields:
            raise TypeError(f"unknown OpDef fields {sorted(fields)}")
        if self.saves is None:
            self.saves = {}

    def grad_fn_name(self, attrs: dict) -> str | None:
        return self.grad_fn(attrs) if callable(self.grad_fn) else self.grad_fn

    def saved(self, attrs: dict) -> dict:
        return self.saves(attrs) if callable(self.saves) else self.saves

    def __repr__(self) -> str:
        return f"OpDef({self.name})"


class Node:
    """One value of the graph IR."""

    __slots__ = (
        "op", "srcs", "attrs", "shape", "dtype", "buffer", "value", "owner",
        "loc", "backward", "id", "__weakref__",
    )

    def __init__(
        self,
        op: OpDef,
        srcs: tuple[Node, ...],
        attrs: dict,
        shape: Shape,
        dtype: dtypes.DType,
    ) -> None:
        self.op = op
        self.srcs = srcs
        self.attrs = attrs
        self.shape = shape
        self.dtype = dtype
        self.buffer = None  # runtime Buffer once computed
        self.value = None  # Python number of a `param`
        self.owner = None  # weakref to the tensor that holds this node, if any
        self.loc = None  # user source location that created it
        self.backward = False  # made by autodiff
        self.id = next(_ids)

    @property
    def realized(self) -> bool:
        return self.buffer is not None

    @property
    def is_scalar_leaf(self) -> bool:
        """A Python number (run-time param or folded const): promotes weakly."""
        return self.op.kind == "leaf" and self.op.name in ("param", "const")

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def promotion_kind(self) -> str:
        if self.shape:
            return "dim"
        return "scalar" if self.op.kind == "leaf" and self.op.name != "input" else "zero"

    def __repr__(self) -> str:
        state = "realized" if self.buffer is not None else self.op.name
        return f"<Node %{self.id} {state} {list(self.shape)} {self.dtype.name}>"
