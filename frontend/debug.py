"""Looking inside: every compiler stage of the programs that compute some tensors.

    llgrad.debug.dump(out, stage="kernels")          # the program that would compute `out`
    llgrad.debug.dump(step, x, stage="all")          # every program `step(x)` runs
    with llgrad.debug.dumping("all", dir="dumps"):   # like LLGRAD_DUMP=all LLGRAD_DUMP_DIR=dumps
        step(x)
    print(llgrad.debug.explain(step, x))             # kernels, what each fused, why boundaries are there
    llgrad.debug.to_dot(out)                         # Graphviz: the graph, kernels as clusters

Stages: forward, backward, optimized (tensor-level MLIR), kernels (loop-level
MLIR), llvm, llvm-opt, asm (see llgrad/runtime/dump.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from llgrad.runtime import dump as _dump
from llgrad.runtime.executor import last_program, lookup

from . import dispatch as _dispatch
from .tensor import Tensor

_LOCATE = _dispatch._user_loc  # the frame walk that finds the user's line (dispatch.py)


def program(*tensors: Tensor):
    """The compiled program that would compute `tensors` now (compiled if needed, not run)."""
    nodes = [t._node for t in tensors if t._node.buffer is None]
    if not nodes:
        raise ValueError("these tensors are already computed: there is no pending graph")
    return lookup(nodes)[0]


def kernels(*tensors: Tensor) -> list[str]:
    """Names of the fused kernels of that program, in execution order."""
    return [k.name for k in program(*tensors).kernels]


def graph_text(*tensors: Tensor, name: str = "graph", form: str = "compact") -> str:
    """The pending graph that computes `tensors`: compact (one line per op, like a jaxpr), or
    form="mlir" for the tensor-level MLIR module (what LLGRAD_DUMP and mlir-opt read)."""
    roots = [t._node for t in tensors]
    if form == "compact":
        from llgrad.compiler.text import format_compact

        return format_compact(roots)
    if form == "mlir":
        from llgrad.compiler.printer import format_graph

        return format_graph(roots, name)
    raise ValueError(f"form must be 'compact' or 'mlir', not {form!r}")


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


def record_locations(enabled: bool = True) -> None:
    """Record the source line of each op (on by default: dumps show it as `loc(...)`).

    Finding it walks Python's frames up to your code, about a microsecond per op; turn it off
    for the last bit of speed in op-by-op code. Ops recorded while it is off have no location.
    """
    from . import dispatch

    dispatch._user_loc = _LOCATE if enabled else _no_location


def _no_location():
    return None


# -- the programs of a tensor or of a function call ---------------------------------------------------

def _tensors_in(value) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors_in(v)]
    return []


def _each_program(fn_or_tensor, args: tuple, visit: Callable) -> list:
    """visit(program, outputs, inputs, params, required) for each program involved; their results.

    A tensor (or a list of them): the program that would compute it now (compiled, not run).
    A function: called with `args`; every program it runs is visited before it runs, and the
    pending tensors it returns are computed too.
    """
    found: list = []
    tensors = _tensors_in(fn_or_tensor)
    if tensors or not callable(fn_or_tensor):
        nodes = list(dict.fromkeys(t._node for t in tensors if t._node.buffer is None))
        if not nodes:
            raise ValueError("nothing to show: these tensors are already computed (pass a function "
                             "and its arguments to see the programs it runs)")
        prog, inputs, params, outputs = lookup(nodes)
        return [visit(prog, outputs, inputs, params, len(nodes))]

    def watch(prog, outputs, inputs, params, required) -> None:
        found.append(visit(prog, outputs, inputs, params, required))

    _dump.observe(watch)
    try:
        result = fn_or_tensor(*args)
        pending = [t._node for t in _tensors_in(result) if t._node.buffer is None]
        if pending:
            from llgrad.runtime import realize

            realize(pending)
    finally:
        _dump.unobserve(watch)
    return found


def dump(fn_or_tensor, *args, stage="kernels") -> str:
    """The text of `stage` (a name, several comma-separated, or "all") of each program involved.

    dump(out, stage="optimized") shows the program that would compute `out`;
    dump(step, x, stage="asm") runs step(x) and shows every program it ran.
    """
    stages = _dump.parse_stages(stage)

    def visit(prog, outputs, inputs, params, required) -> str:
        return "\n".join(_dump.render(s, prog, outputs, inputs, params, required=required) for s in stages)

    return "\n".join(_each_program(fn_or_tensor, args, visit))


@contextlib.contextmanager
def dumping(stages="all", dir: str | None = None, stream=None) -> Iterator[None]:
    """Dump the given stages of every program compiled inside the block.

    To `dir` (one file per stage per program: <hash>.forward.mlir, <hash>.llvm.ll, <hash>.s, ...)
    or printed to `stream` (default stderr). Programs already in the cache are not compiled
    again, so they are not dumped: use dump(fn, *args) to see those.
    """
    config = _dump.Config(_dump.parse_stages(stages), dir, stream)
    _dump.push(config)
    try:
        yield
    finally:
        _dump.pop(config)


def _traced(prog, outputs, inputs, params, required):
    from llgrad.compiler.schedule import schedule

    sched = schedule(outputs, inputs, params, required=required, trace=True)
    return sched


def explain(fn_or_tensor, *args) -> str:
    """The kernels of each program involved, the IR ops each fused, and why each boundary is there.

    Values are named as in the `optimized` dump. The reasons are those the scheduler recorded
    while deciding (it is run again, deterministically, with recording on).
    """
    from llgrad.compiler.explain import explain_text

    def visit(prog, outputs, inputs, params, required) -> str:
        sched = _traced(prog, outputs, inputs, params, required)
        backend = getattr(prog, "backend", "llgrad")
        note = f" (lowered by the {backend} backend; llgrad's fusion shown)" if backend != "llgrad" else ""
        return explain_text(sched.trace, sched.kernels, inputs, params, title=f"program {prog.name}{note}:")

    return "\n".join(_each_program(fn_or_tensor, args, visit))


def to_dot(fn_or_tensor, *args) -> str:
    """Graphviz DOT of each program's optimized graph, one cluster per kernel (render with `dot -Tsvg`)."""
    from llgrad.compiler.explain import to_dot as dot

    def visit(prog, outputs, inputs, params, required) -> str:
        sched = _traced(prog, outputs, inputs, params, required)
        return dot(sched.trace, sched.kernels, inputs, params, name=prog.name)

    return "\n".join(_each_program(fn_or_tensor, args, visit))


__all__ = ["program", "kernels", "last_program", "graph_text", "trace_grad", "dump", "dumping",
           "explain", "to_dot", "record_locations"]
