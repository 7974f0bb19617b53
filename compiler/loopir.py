"""Loop IR: what the scheduler makes of a graph, and what codegen turns into LLVM.

A `Kernel` is a loop nest over buffers. Statements: `Loop`, `Store`,
`AccInit`/`AccUpdate` (reduction accumulators). Values form a DAG of pure
scalar expressions (`Load`, `Param`, `Const`, `Apply` of an op-table entry,
`Cast`, `AccValue`, `IndexValue`, `InWindow`, `Select`); codegen emits each
value object once per loop scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
        self.acc, self.dtype = acc, acc.dtype


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


# -- statements -------------------------------------------------------------------

@dataclass(eq=False)
class Acc:
    name: str
    kind: str  # sum, max, min, argmax, argmin
    dtype: DType  # dtype of the accumulated value (argmax: of the compared value)
    result_dtype: DType


@dataclass(eq=False)
class Loop:
    var: Var
    body: list = field(default_factory=list)
    role: str = "parallel"  # "parallel" (independent iterations), "reduce" or "serial"


@dataclass(eq=False)
class Store:
    buf: Buf
    index: Sym
    value: Value


@dataclass(eq=False)
class AccInit:
    acc: Acc


@dataclass(eq=False)
class AccUpdate:
    acc: Acc
    value: Value
    index: Sym | None = None  # position, for argmax/argmin


@dataclass(eq=False)
class Kernel:
    name: str
    bufs: list  # Buf objects this kernel reads or writes
    body: list
    fused: list = field(default_factory=list)  # names of the graph ops fused in
    params: int = 0  # number of run-time scalar slots of the program


# -- printing -----------------------------------------------------------------------

def format_kernel(k: Kernel) -> str:
    """A readable, MLIR-flavoured listing (scf.for loops over memrefs)."""
    lines = []
    args = ", ".join(f"%{b.name}: memref<{_mshape(b)}>" for b in k.bufs)
    lines.append(f"func.func @{k.name}({args}) {{")
    names: dict[int, str] = {}
    _print_block(k.body, lines, names, "  ")
    lines.append("}")
    return "\n".join(lines)


def _mshape(b: Buf) -> str:
    return "x".join([str(n) for n in b.shape] + [_ty(b.dtype)])


def _ty(dt: DType) -> str:
    return {"float32": "f32", "float64": "f64", "int64": "i64", "int32": "i32", "bool": "i1"}[dt.name]


def _print_block(stmts, lines, names, ind):
    for s in stmts:
        if isinstance(s, Loop):
            lines.append(f"{ind}scf.for %{s.var.name} = 0 to {s.var.extent} {{  // {s.role}")
            _print_block(s.body, lines, names, ind + "  ")
            lines.append(f"{ind}}}")
        elif isinstance(s, Store):
            v = _val(s.value, lines, names, ind)
            lines.append(f"{ind}memref.store {v}, %{s.buf.name}[{s.index}]")
        elif isinstance(s, AccInit):
            lines.append(f"{ind}%{s.acc.name} = acc.init {s.acc.kind} : {_ty(s.acc.dtype)}")
        elif isinstance(s, AccUpdate):
            v = _val(s.value, lines, names, ind)
            at = f" at {s.index}" if s.index is not None else ""
            lines.append(f"{ind}acc.{s.acc.kind} %{s.acc.name}, {v}{at}")


def _val(v: Value, lines, names, ind) -> str:
    key = id(v)
    if key in names:
        return names[key]
    if isinstance(v, Const):
        return f"{v.value!r}:{_ty(v.dtype)}"
    if isinstance(v, Param):
        return f"%param{v.slot}"
    if isinstance(v, AccValue):
        return f"%{v.acc.name}"
    if isinstance(v, Load):
        rhs = f"memref.load %{v.buf.name}[{v.index}]"
    elif isinstance(v, Apply):
        args = ", ".join(_val(a, lines, names, ind) for a in v.args)
        rhs = f"{v.op.name} {args}"
    elif isinstance(v, Cast):
        rhs = f"cast {_val(v.arg, lines, names, ind)}"
    elif isinstance(v, IndexValue):
        rhs = f"index {v.index}"
    elif isinstance(v, InWindow):
        rhs = f"in_window {v.index} from {v.start} count {v.count} step {v.step}"
    elif isinstance(v, Guarded):
        rhs = f"guarded {_val(v.cond, lines, names, ind)}, {_val(v.value, lines, names, ind)}"
    else:  # pragma: no cover
        rhs = type(v).__name__
    name = f"%v{len(names)}"
    names[key] = name
    lines.append(f"{ind}{name} = {rhs} : {_ty(v.dtype)}")
    return name
