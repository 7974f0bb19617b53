"""The fuzzer's graph model: leaves (concrete arrays) and steps (an op on earlier values).

A graph prints as the program it stands for (`Graph.source()`), written against the
`torch` name, so a shrunk failure pastes straight into a regression test; the same
per-step expressions are what the checker evaluates with `torch` bound to llgrad or to
PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Ref:
    """An earlier value of the graph, by position."""

    index: int


@dataclass(eq=False)
class Leaf:
    data: np.ndarray
    grad: bool = False  # requires_grad (floating leaves only)


@dataclass(eq=False)
class Step:
    op: str
    args: tuple  # Ref, Python numbers, or tuples of Refs (cat)
    attrs: dict = field(default_factory=dict)


@dataclass(eq=False)
class Graph:
    nodes: list  # Leaf | Step, in program order
    outputs: list  # positions whose values are compared (the last node always)
    backward_first: bool = True  # backward() before reading values (else values first)
    weight_seed: int = 0  # the seed of the backward pass's output gradient

    def name(self, i: int) -> str:
        return f"x{i}" if isinstance(self.nodes[i], Leaf) else f"v{i}"

    def expression(self, i: int) -> str:
        """The expression computing node i, in terms of the names of earlier nodes."""
        from .ops import OPS

        node = self.nodes[i]
        if isinstance(node, Leaf):
            return leaf_source(node)
        return OPS[node.op].render([self.arg_source(a) for a in node.args], node.attrs)

    def arg_source(self, a) -> str:
        if isinstance(a, Ref):
            return self.name(a.index)
        if isinstance(a, tuple):
            return "[" + ", ".join(self.arg_source(x) for x in a) + "]"
        return repr(a)

    @property
    def loss(self) -> int:
        return len(self.nodes) - 1

    def line(self, i: int) -> str:
        """The source of node i: `v3 = expr`, or for a statement `x[k] = v` then `v3 = x`."""
        from .ops import OPS

        node = self.nodes[i]
        if isinstance(node, Step) and OPS[node.op].statement:
            return f"{self.expression(i)}\n{self.name(i)} = {self.arg_source(node.args[0])}"
        return f"{self.name(i)} = {self.expression(i)}"

    def source(self) -> str:
        lines = [self.line(i) for i in range(len(self.nodes))]
        lines.append(
            f"# outputs compared: {', '.join(self.name(i) for i in self.outputs)}; "
            f"backward from {self.name(self.loss)} "
            f"{'before' if self.backward_first else 'after'} reading values"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return "Graph:\n" + self.source()


def leaf_source(leaf: Leaf) -> str:
    a = leaf.data
    dtype = f"torch.{a.dtype.name}"
    grad = ", requires_grad=True" if leaf.grad else ""
    if a.size == 0:
        return f"torch.zeros({tuple(a.shape)}, dtype={dtype}{grad})"
    return f"torch.tensor({_literal(a)}, dtype={dtype}{grad})"


def _literal(a: np.ndarray) -> str:
    if a.dtype.kind == "f":
        # The shortest text that reads back as the same value of this dtype.
        text = np.array2string(
            a,
            separator=", ",
            threshold=10**6,
            floatmode="unique",
            max_line_width=10**6,
            formatter={"float_kind": _float_text},
        )
        return text
    return repr(a.tolist())


def _float_text(v) -> str:
    if np.isnan(v):
        return "float('nan')"
    if np.isinf(v):
        return "float('inf')" if v > 0 else "-float('inf')"
    return np.format_float_positional(v, unique=True, trim="0")
