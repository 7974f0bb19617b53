"""Looking inside: the compiled program (kernels, stages) that computes some tensors."""

from __future__ import annotations

from llgrad.compiler.printer import format_graph
from llgrad.runtime.executor import last_program, lookup

from .tensor import Tensor


def program(*tensors: Tensor):
    """The compiled program that would compute `tensors` now (compiled if needed, not run)."""
    nodes = [t._node for t in tensors if t._node.buffer is None]
    if not nodes:
        raise ValueError("these tensors are already computed: there is no pending graph")
    return lookup(nodes)[0]


def kernels(*tensors: Tensor) -> list[str]:
    """Names of the fused kernels of that program, in execution order."""
    return [k.name for k in program(*tensors).kernels]


def graph_text(*tensors: Tensor, name: str = "graph") -> str:
    """The pending graph IR that computes `tensors`, as text."""
    return format_graph([t._node for t in tensors], name)


def trace_grad(output: Tensor, inputs) -> list[Tensor]:
    """d output / d inputs as pending (uncomputed) tensors: their graph is the backward IR."""
    from .autograd import engine
    from .autograd.function import edge_of

    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    seeds = engine._seeds([output], [None], create_graph=False)
    capture = {edge_of(t): None for t in inputs}
    engine.run_graph([output], seeds, retain_graph=True, create_graph=False, capture=capture,
                     compute=False)
    return [capture[edge_of(t)] for t in inputs]


__all__ = ["program", "kernels", "last_program", "graph_text", "trace_grad"]
