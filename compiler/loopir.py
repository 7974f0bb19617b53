"""Loop IR: what the scheduler makes of a graph, and what codegen turns into LLVM.

A `Kernel` is a loop nest over buffers. Statements: `Loop`, `Store`,
`AccInit`/`AccUpdate` (reduction accumulators). Values form a DAG of pure
scalar expressions (`Load`, `Param`, `Const`, `Apply` of an op-table entry,
`Cast`, `AccValue`, `IndexValue`, `InWindow`, `Select`); codegen emits each
value object once per loop scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .dtypes import DType
from .graph import OpDef
from .index import Sym, Var


@dataclass(eq=False)
class Buf:
    slot: int  # position in the program's buffer table
    name: str
    shape: tuple
    dtype: DType
    role: str  # "in", "out" or "tmp"


# -- values -----------------------------------------------------------------------

class Value:
    __slots__ = ("dtype",)


class Load(Value):
    """buf[index]; under a `guard` the address is clamped to 0 where it is false."""

    __slots__ = ("buf", "index", "guard")

    def __init__(self, buf: Buf, index: Sym, guard: Value | None = None) -> None:
        self.buf, self.index, self.guard, self.dtype = buf, index, guard, buf.dtype


class Param(Value):
    __slots__ = ("slot",)

    def __init__(self, slot: int, dtype: DType) -> None:
        self.slot, self.dtype = slot, dtype


class Const(Value):
    __slots__ = ("value",)

    def __init__(self, value, dtype: DType) -> None:
        self.value, self.dtype = value, dtype


class Apply(Value):
    """An elementwise op of the op table on already-converted arguments."""

    __slots__ = ("op", "args", "compute", "attrs")

    def __init__(self, op: OpDef, args: tuple, compute: DType, attrs: dict, dtype: DType) -> None:
        self.op, self.args, self.compute, self.attrs, self.dtype = op, args, compute, attrs, dtype


class Cast(Value):
    __slots__ = ("arg",)

    def __init__(self, arg: Value, dtype: DType) -> None:
        self.arg, self.dtype = arg, dtype


class AccValue(Value):
    __slots__ = ("acc",)

    def __init__(self, acc: Acc) -> None:
        # What codegen produces: the result (int64 for argmax), not the accumulated dtype.
        self.acc, self.dtype = acc, acc.result_dtype


class IndexValue(Value):
    """A loop index expression as an int64 value (iota)."""

    __slots__ = ("index",)

    def __init__(self, index: Sym, dtype: DType) -> None:
        self.index, self.dtype = index, dtype


class InWindow(Value):
    """bool: start <= index < start + count*step and (index - start) % step == 0."""

    __slots__ = ("index", "start", "count", "step")

    def __init__(self, index: Sym, start: int, count: int, step: int, dtype: DType) -> None:
        self.index, self.start, self.count, self.step, self.dtype = index, start, count, step, dtype


class Select(Value):
    """cond ? a : b (a, b of one dtype)."""

    __slots__ = ("cond", "a", "b")

    def __init__(self, cond: Value, a: Value, b: Value) -> None:
        self.cond, self.a, self.b, self.dtype = cond, a, b, a.dtype


class DynIndex:
    """A flat buffer offset known only at run time: sym + sum(value * stride).

    Values are int64 positions loaded from index tensors (gather/scatter).
    """

    __slots__ = ("sym", "terms")

    def __init__(self, sym: Sym, terms: tuple) -> None:
        self.sym, self.terms = sym, terms

    def __repr__(self) -> str:
        dyn = " + ".join(f"dyn * {stride}" for _, stride in self.terms)
        return f"{self.sym} + {dyn}" if dyn else repr(self.sym)


class Guarded(Value):
    """`value` where `cond` holds, zero elsewhere; loads inside never run out of bounds."""

    __slots__ = ("cond", "value")

    def __init__(self, cond: Value, value: Value) -> None:
        self.cond, self.value, self.dtype = cond, value, value.dtype


def operands(v: Value) -> tuple:
    """The values `v` reads, in evaluation order (guards and run-time index terms included)."""
    if isinstance(v, Apply):
        return v.args
    if isinstance(v, Load):
        found = (v.guard,) if v.guard is not None else ()
        if isinstance(v.index, DynIndex):
            found += tuple(t for t, _ in v.index.terms)
        return found
    if isinstance(v, Cast):
        return (v.arg,)
    if isinstance(v, Select):
        return (v.cond, v.a, v.b)
    if isinstance(v, Guarded):
        return (v.cond, v.value)
    return ()


def postorder(root: Value, done) -> list:
    """The values under `root` (itself included) that `done(value)` rejects, operands first.

    Iterative: a fused chain of 10,000 ops is a value 10,000 deep. Emitters evaluate this list
    in order, so evaluating each value finds its operands already done (no recursion).
    """
    out: list = []
    seen: set = set()
    stack = [(root, False)]
    while stack:
        v, ready = stack.pop()
        if ready:
            out.append(v)
            continue
        if id(v) in seen or done(v):
            continue
        seen.add(id(v))
        stack.append((v, True))
        stack.extend((c, False) for c in reversed(operands(v)))
    return out


# -- statements -------------------------------------------------------------------

@dataclass(eq=False)
class Acc:
    name: str
    kind: str  # sum, max, min, argmax, argmin
    dtype: DType  # dtype of the accumulated value (argmax: of the compared value)
    result_dtype: DType


@dataclass(eq=False)
class Loop:
    visit: ClassVar[str] = "loop"  # the method of a StatementVisitor that emits it
    var: Var
    body: list = field(default_factory=list)
    role: str = "parallel"  # "parallel" (independent iterations), "reduce" or "serial"


@dataclass(eq=False)
class Store:
    visit: ClassVar[str] = "store"  # the method of a StatementVisitor that emits it
    buf: Buf
    index: Sym
    value: Value


@dataclass(eq=False)
class AccInit:
    visit: ClassVar[str] = "acc_init"  # the method of a StatementVisitor that emits it
    acc: Acc


@dataclass(eq=False)
class AccUpdate:
    visit: ClassVar[str] = "acc_update"  # the method of a StatementVisitor that emits it
    acc: Acc
    value: Value
    index: Sym | None = None  # position, for argmax/argmin


class StatementVisitor:
    """What emits a kernel's statements (LLVM codegen, the MLIR loop printer): a method per kind
    of statement, named by the statement class's `visit` (gemm's statements have theirs too)."""

    def block(self, stmts: list) -> None:
        for s in stmts:
            getattr(self, s.visit)(s)


@dataclass(eq=False)
class Kernel:
    name: str
    bufs: list  # Buf objects this kernel reads or writes
    body: list
    fused: list = field(default_factory=list)  # names of the graph ops fused in
    params: int = 0  # number of run-time scalar slots of the program
    scratch: list = field(default_factory=list)  # per-thread stack buffers (Buf, role "stack")


def iterations(k: Kernel) -> int:
    """How many innermost loop iterations a kernel runs: its work, roughly."""

    def count(stmts) -> int:
        total = 0
        for s in stmts:
            if isinstance(s, Loop):
                total += s.var.extent * max(count(s.body), 1)
            else:
                total += getattr(s, "work", 1)  # a library call (gemm) says how much it does
        return total

    return count(k.body)
