"""Scalar code in MLIR's `arith` and `math` dialects: types, constants, conversions, op bodies.

Both MLIR printers use this: the tensor-level one for the bodies of
`linalg.generic` ops, the loop-level one for the statements of a kernel.

Ops are not listed here: each op's one scalar rule (compiler/ops/, written against
compiler/scalar.py) runs on this builder as it runs on LLVM's, so the text and the
machine code come from the same rule.
"""

from __future__ import annotations

import math
import struct

from .dtypes import DType, bool_, float32, float64
from .index import FloorDiv, Sym, Var
from .scalar import Scalar

TYPES = {"float32": "f32", "float64": "f64", "int64": "i64", "int32": "i32", "bool": "i1"}


def mlir_type(dt: DType) -> str:
    return TYPES[dt.name]


def param_type(dt: DType) -> str:
    """How a run-time scalar travels: a double, a bool, or an int64 (the program ABI's 8-byte slots)."""
    return "f64" if dt.is_floating_point else ("i1" if dt is bool_ else "i64")


def param_dtype(dt: DType) -> DType:
    from .dtypes import int64

    return float64 if dt.is_floating_point else (bool_ if dt is bool_ else int64)


def float_literal(value: float, dt: DType) -> str:
    """An MLIR float literal that parses back to exactly the value llgrad uses."""
    value = float(value)
    if dt is float32:
        as_f32 = struct.unpack("<f", struct.pack("<f", value))[0] if math.isfinite(value) else value
        if math.isfinite(value) and not math.isfinite(as_f32):
            as_f32 = math.copysign(math.inf, value)
        value = as_f32
        if not math.isfinite(value):
            return "0x{:08X}".format(struct.unpack("<I", struct.pack("<f", value))[0])
    elif not math.isfinite(value):
        return "0x{:016X}".format(struct.unpack("<Q", struct.pack("<d", value))[0])
    text = repr(value)
    if "e" in text and "." not in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


class ScalarBuilder(Scalar):
    """The scalar builder (compiler/scalar.py) over MLIR text: appends ops to `lines` and
    returns their SSA names.

    `prefix` keeps names unique in the enclosing scope (MLIR forbids shadowing);
    `loc` is the text appended to every op (` loc(#loc3)` or "").
    """

    def __init__(self, lines: list, indent: str, prefix: str, loc: str = "", decls: dict | None = None,
                 const_lines: list | None = None) -> None:
        self.lines = lines
        self.indent = indent
        self.prefix = prefix
        self.loc = loc
        self.count = 0
        self.decls = decls if decls is not None else {}
        self.consts: dict = {}
        # Where constants go: hoisted to the function's entry (loop kernels) or inline (op bodies).
        self.const_lines = const_lines
        self.const_indent = indent

    def op(self, rhs: str, into: list | None = None, name: str | None = None) -> str:
        if name is None:
            name = f"%{self.prefix}{self.count}"
            self.count += 1
        if into is None:
            self.lines.append(f"{self.indent}{name} = {rhs}{self.loc}")
        else:
            into.append(f"{self.const_indent}{name} = {rhs}{self.loc}")
        return name

    # -- leaves -----------------------------------------------------------------
    def const(self, value, dt: DType) -> str:
        key = (repr(value), dt.name)
        if key in self.consts:
            return self.consts[key]
        if dt.is_floating_point:
            text = f"arith.constant {float_literal(value, dt)} : {mlir_type(dt)}"
        elif dt is bool_:
            text = f"arith.constant {'true' if value else 'false'}"
        else:
            text = f"arith.constant {int(value)} : {mlir_type(dt)}"
        named = None
        if self.const_lines is not None:  # hoisted: MLIR's usual names (%cst, %c3_i64, %true)
            if dt.is_floating_point:
                n = sum(1 for k in self.consts if k[1] in ("float32", "float64"))
                named = f"%cst{n}" if n else "%cst"
            elif dt is bool_:
                named = "%true" if value else "%false"
            else:
                named = f"%c{int(value)}_{mlir_type(dt)}".replace("-", "m")
        name = self.op(text, self.const_lines, named)
        self.consts[key] = name
        return name

    def index_const(self, value: int) -> str:
        key = (value, "index")
        if key not in self.consts:
            named = None
            if self.const_lines is not None:
                named = f"%c{value}" if value >= 0 else f"%c_m{-value}"
            self.consts[key] = self.op(f"arith.constant {int(value)} : index", self.const_lines, named)
        return self.consts[key]

    # -- conversions (ScalarCodegen.cast, op for op) ------------------------------
    def convert(self, v: str, src: DType, dst: DType) -> str:
        if src is dst:
            return v
        s, d = mlir_type(src), mlir_type(dst)
        if dst is bool_:
            if src.is_floating_point:
                return self.op(f"arith.cmpf une, {v}, {self.const(0.0, src)} : {s}")
            return self.op(f"arith.cmpi ne, {v}, {self.const(0, src)} : {s}")
        if src.is_floating_point and dst.is_floating_point:
            kind = "extf" if dst.itemsize > src.itemsize else "truncf"
            return self.op(f"arith.{kind} {v} : {s} to {d}")
        if src.is_floating_point:
            return self.op(f"arith.fptosi {v} : {s} to {d}")
        if dst.is_floating_point:
            return self.op(f"arith.{'uitofp' if src is bool_ else 'sitofp'} {v} : {s} to {d}")
        if dst.itemsize > src.itemsize or src is bool_:
            return self.op(f"arith.{'extui' if src is bool_ else 'extsi'} {v} : {s} to {d}")
        return self.op(f"arith.trunci {v} : {s} to {d}")

    # -- the scalar builder's primitives (compiler/scalar.py), op for op like codegen's -------
    def unsigned_to_float(self, v: str, src: DType, dst: DType) -> str:
        return self.op(f"arith.uitofp {v} : {mlir_type(src)} to {mlir_type(dst)}")

    def binary(self, op: str, a: str, b: str, dt: DType) -> str:
        if op in ("max", "min"):
            if dt.is_floating_point:  # NaN-propagating, like llvm.maximum / torch.maximum
                kind = f"{op}imumf"
            else:
                kind = f"{op}{'ui' if dt is bool_ else 'si'}"
        elif dt.is_floating_point:
            kind = _FLOAT_OPS[op]
        else:
            kind = _INT_OPS[op]
        return self.op(f"arith.{kind} {a}, {b} : {mlir_type(dt)}")

    def reassociable(self, op: str, a: str, b: str, dt: DType) -> str:
        return self.op(f"arith.{_FLOAT_OPS[op]} {a}, {b} fastmath<reassoc,contract> : {mlir_type(dt)}")

    def select(self, cond: str, a: str, b: str, dt: DType) -> str:
        return self.op(f"arith.select {cond}, {a}, {b} : {mlir_type(dt)}")

    def compare(self, pred: str, a: str, b: str, dt: DType) -> str:
        """`pred` one of == != < <= > >=: ordered float compares except !=, as in codegen."""
        if dt.is_floating_point:
            p = "une" if pred == "!=" else "o" + _PRED[pred]
            return self.op(f"arith.cmpf {p}, {a}, {b} : {mlir_type(dt)}")
        p = _PRED[pred] if pred in ("==", "!=") else ("u" if dt is bool_ else "s") + _PRED[pred]
        return self.op(f"arith.cmpi {p}, {a}, {b} : {mlir_type(dt)}")

    def neg(self, x: str, dt: DType) -> str:
        if dt.is_floating_point:
            return self.op(f"arith.negf {x} : {mlir_type(dt)}")
        return self.binary("sub", self.const(0, dt), x, dt)

    def not_(self, x: str) -> str:
        return self.op(f"arith.xori {x}, {self.const(True, bool_)} : i1")

    def math(self, fn: str, x: str, dt: DType) -> str:
        if fn == "sigmoid":
            return self.sigmoid(x, dt)
        return self.op(f"math.{_MATH.get(fn, fn)} {x} : {mlir_type(dt)}")

    def fma(self, a: str, b: str, c: str, dt: DType) -> str:
        if dt.is_floating_point:
            return self.op(f"math.fma {a}, {b}, {c} : {mlir_type(dt)}")
        if dt is bool_:
            return self.binary("or", self.binary("and", a, b, dt), c, dt)
        return self.binary("add", self.binary("mul", a, b, dt), c, dt)

    def pow(self, x: str, y: str, dt: DType) -> str:
        if dt.is_floating_point:
            return self.op(f"math.powf {x}, {y} : {mlir_type(dt)}")
        # Integer powers through double, as codegen does.
        r = self.op(f"math.powf {self.convert(x, dt, float64)}, {self.convert(y, dt, float64)} : f64")
        return self.convert(r, float64, dt)


_PRED = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_FLOAT_OPS = {"add": "addf", "sub": "subf", "mul": "mulf", "div": "divf"}
_INT_OPS = {"add": "addi", "sub": "subi", "mul": "muli", "div": "divsi", "and": "andi", "or": "ori",
            "xor": "xori", "shr": "shrui"}
_MATH = {"fabs": "absf"}


# -- accumulators and index arithmetic (shared by both printers) ---------------------------

def index_value(b: ScalarBuilder, sym: Sym, at: dict) -> str:
    """A symbolic index as `index`-typed arith ops over the loop indices in `at` (Var -> SSA)."""
    total = None
    for atom, coeff in sym.terms:
        if isinstance(atom, Var):
            term = at[atom]
        else:
            inner = index_value(b, atom.expr, at)
            signed = atom.expr.bounds()[0] < 0  # only under a guard; unused there
            d = b.index_const(atom.divisor)
            if isinstance(atom, FloorDiv):
                term = b.op(f"arith.{'divsi' if signed else 'divui'} {inner}, {d} : index")
            else:
                term = b.op(f"arith.{'remsi' if signed else 'remui'} {inner}, {d} : index")
        if coeff != 1:
            term = b.op(f"arith.muli {term}, {b.index_const(coeff)} : index")
        total = term if total is None else b.op(f"arith.addi {total}, {term} : index")
    if total is None:
        return b.index_const(sym.const)
    if sym.const:
        total = b.op(f"arith.addi {total}, {b.index_const(sym.const)} : index")
    return total


def in_window(b: ScalarBuilder, at: str, start: int, count: int, step: int) -> str:
    """i1: start <= at < start + count*step and (at - start) % step == 0 (codegen's InWindow)."""
    d = b.op(f"arith.subi {at}, {b.index_const(start)} : index")
    ok = b.op(f"arith.andi {b.op(f'arith.cmpi sge, {d}, {b.index_const(0)} : index')}, "
              f"{b.op(f'arith.cmpi slt, {d}, {b.index_const(count * step)} : index')} : i1")
    if step != 1:
        rem = b.op(f"arith.remsi {d}, {b.index_const(step)} : index")
        ok = b.op(f"arith.andi {ok}, {b.op(f'arith.cmpi eq, {rem}, {b.index_const(0)} : index')} : i1")
    return ok
