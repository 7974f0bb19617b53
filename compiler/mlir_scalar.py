"""Scalar code in MLIR's `arith` and `math` dialects: types, constants, conversions, op bodies.

Both MLIR printers use this: the tensor-level one for the bodies of
`linalg.generic` ops, the loop-level one for the statements of a kernel. Each
op mirrors the LLVM lowering of its op-table entry (same compares, same
NaN rules, same conversions), so the MLIR text means what llgrad runs.

An op without an MLIR form here is printed as a call of a private function
(`func.call @llgrad.<op>...`): the module stays valid and says plainly that
the op is opaque at this level; the MLIR backend refuses such modules.
"""

from __future__ import annotations

import math
import struct

from .dtypes import DType, bool_, float32, float64
from .index import FloorDiv, Sym, Var

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


class Unsupported(Exception):
    """An op with no MLIR form in this table."""


class ScalarBuilder:
    """Appends scalar ops to `lines` and returns their SSA names.

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

    # -- ops ----------------------------------------------------------------------
    def apply(self, name: str, args: list, dt: DType, attrs: dict, out: DType) -> str:
        """Op `name` of the op table on `args` (already in compute dtype `dt`); result in `out`."""
        rule = _RULES.get(name)
        if rule is None:
            raise Unsupported(name)
        return rule(self, args, dt, attrs)

    def opaque(self, name: str, args: list, arg_types: list, result: str) -> str:
        """A call of a private function standing for an op with no MLIR form."""
        sig = "_".join(t.replace("x", "_") for t in arg_types) or "void"
        symbol = f"llgrad.{name}.{sig}"
        self.decls[symbol] = f"func.func private @{symbol}({', '.join(arg_types)}) -> {result}"
        return self.op(f"func.call @{symbol}({', '.join(args)}) : ({', '.join(arg_types)}) -> {result}")

    def binary(self, float_op: str, int_op: str, a: str, b: str, dt: DType,
               bool_op: str | None = None) -> str:
        if dt.is_floating_point:
            kind = float_op
        elif dt is bool_ and bool_op:
            kind = bool_op
        else:
            kind = int_op
        return self.op(f"arith.{kind} {a}, {b} : {mlir_type(dt)}")

    def select(self, cond: str, a: str, b: str, dt: DType) -> str:
        return self.op(f"arith.select {cond}, {a}, {b} : {mlir_type(dt)}")

    def compare(self, pred: str, a: str, b: str, dt: DType) -> str:
        """`pred` one of == != < <= > >=: ordered float compares except !=, as in codegen."""
        if dt.is_floating_point:
            p = "une" if pred == "!=" else "o" + _PRED[pred]
            return self.op(f"arith.cmpf {p}, {a}, {b} : {mlir_type(dt)}")
        p = _PRED[pred] if pred in ("==", "!=") else ("u" if dt is bool_ else "s") + _PRED[pred]
        return self.op(f"arith.cmpi {p}, {a}, {b} : {mlir_type(dt)}")

    def math(self, fn: str, x: str, dt: DType) -> str:
        return self.op(f"math.{fn} {x} : {mlir_type(dt)}")

    def minmax(self, which: str, a: str, b: str, dt: DType) -> str:
        if dt.is_floating_point:  # NaN-propagating, like llvm.maximum / torch.maximum
            return self.binary(f"{which}imumf", "", a, b, dt)
        kind = (f"{which}ui" if dt is bool_ else f"{which}si")
        return self.binary("", kind, a, b, dt)

    def fma(self, a: str, b: str, c: str, dt: DType) -> str:
        if dt.is_floating_point:
            return self.op(f"math.fma {a}, {b}, {c} : {mlir_type(dt)}")
        return self.binary("", "addi", self.binary("", "muli", a, b, dt, "andi"), c, dt, "ori")


_PRED = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


def _arith(float_op: str, int_op: str, bool_op: str | None = None, swap: bool = False):
    def rule(b, args, dt, attrs):
        x, y = args[::-1] if swap else args
        return b.binary(float_op, int_op, x, y, dt, bool_op)

    return rule


def _cmp(pred: str):
    return lambda b, args, dt, attrs: b.compare(pred, args[0], args[1], dt)


def _math(fn: str):
    return lambda b, args, dt, attrs: b.math(fn, args[0], dt)


def _pow(b, x, y, dt):
    if dt.is_floating_point:
        return b.op(f"math.powf {x}, {y} : {mlir_type(dt)}")
    # Integer powers through double, as codegen does.
    r = b.op(f"math.powf {b.convert(x, dt, float64)}, {b.convert(y, dt, float64)} : f64")
    return b.convert(r, float64, dt)


def _pow_scalar(b, args, dt, attrs):
    (x,) = args
    p = attrs["exponent"]
    if (float(p).is_integer() and abs(p) <= 64) or not dt.is_floating_point:
        n, result, base = int(abs(p)), None, x
        while n:  # square-and-multiply, like codegen's pow_const
            if n & 1:
                result = base if result is None else b.binary("mulf", "muli", result, base, dt)
            n >>= 1
            if n:
                base = b.binary("mulf", "muli", base, base, dt)
        if result is None:
            result = b.const(1, dt)
        if p < 0:
            result = b.binary("divf", "", b.const(1.0, dt), result, dt)
        return result
    if p == 0.5:
        return b.math("sqrt", x, dt)
    if p == -0.5:
        return b.binary("divf", "", b.const(1.0, dt), b.math("sqrt", x, dt), dt)
    return b.op(f"math.powf {x}, {b.const(p, dt)} : {mlir_type(dt)}")


def _neg(b, args, dt, attrs):
    if dt.is_floating_point:
        return b.op(f"arith.negf {args[0]} : {mlir_type(dt)}")
    return b.binary("", "subi", b.const(0, dt), args[0], dt)


def _abs(b, args, dt, attrs):
    if dt.is_floating_point:
        return b.math("absf", args[0], dt)
    x = args[0]
    negative = b.compare("<", x, b.const(0, dt), dt)
    return b.select(negative, b.binary("", "subi", b.const(0, dt), x, dt), x, dt)


def _sign(b, args, dt, attrs):
    (x,) = args
    if dt is bool_:
        return x
    zero = b.const(0, dt)
    if dt.is_floating_point:
        pos = b.convert(b.compare(">", x, zero, dt), bool_, dt)
        neg = b.convert(b.compare("<", x, zero, dt), bool_, dt)
        return b.binary("subf", "", pos, neg, dt)  # sign(NaN) is 0, as in PyTorch
    one = b.const(1, dt)
    pos = b.select(b.compare(">", x, zero, dt), one, zero, dt)
    neg = b.select(b.compare("<", x, zero, dt), one, zero, dt)
    return b.binary("", "subi", pos, neg, dt)


def _relu(b, args, dt, attrs):
    (x,) = args
    zero = b.const(0, dt)
    return b.select(b.compare("<", x, zero, dt), zero, x, dt)


def _sigmoid(b, args, dt, attrs):
    one = b.const(1.0, dt)
    e = b.math("exp", b.op(f"arith.negf {args[0]} : {mlir_type(dt)}"), dt)
    return b.binary("divf", "", one, b.binary("addf", "", one, e, dt), dt)


def _reciprocal(b, args, dt, attrs):
    return b.binary("divf", "", b.const(1.0, dt), args[0], dt)


def _rsqrt(b, args, dt, attrs):
    return b.binary("divf", "", b.const(1.0, dt), b.math("sqrt", args[0], dt), dt)


def _rounding(fn: str):
    return lambda b, args, dt, attrs: b.math(fn, args[0], dt) if dt.is_floating_point else args[0]


def _clamp(b, args, dt, attrs):
    x, rest = args[0], list(args[1:])
    if attrs.get("has_min"):
        x = b.minmax("max", x, rest.pop(0), dt)
    if attrs.get("has_max"):
        x = b.minmax("min", x, rest.pop(0), dt)
    return x


_RULES = {
    "add": _arith("addf", "addi", "ori"),
    "sub": _arith("subf", "subi"),
    "rsub": _arith("subf", "subi", swap=True),
    "mul": _arith("mulf", "muli", "andi"),
    "div": _arith("divf", "divsi"),
    "pow": lambda b, a, dt, at: _pow(b, a[0], a[1], dt),
    "rpow": lambda b, a, dt, at: _pow(b, a[1], a[0], dt),
    "pow_scalar": _pow_scalar,
    "maximum": lambda b, a, dt, at: b.minmax("max", a[0], a[1], dt),
    "minimum": lambda b, a, dt, at: b.minmax("min", a[0], a[1], dt),
    "eq": _cmp("=="), "ne": _cmp("!="), "lt": _cmp("<"), "le": _cmp("<="), "gt": _cmp(">"), "ge": _cmp(">="),
    "logical_and": lambda b, a, dt, at: b.op(f"arith.andi {a[0]}, {a[1]} : i1"),
    "logical_or": lambda b, a, dt, at: b.op(f"arith.ori {a[0]}, {a[1]} : i1"),
    "logical_not": lambda b, a, dt, at: b.op(f"arith.xori {a[0]}, {b.const(True, bool_)} : i1"),
    "neg": _neg,
    "exp": _math("exp"), "log": _math("log"), "sqrt": _math("sqrt"), "sin": _math("sin"),
    "cos": _math("cos"), "tanh": _math("tanh"), "log1p": _math("log1p"), "expm1": _math("expm1"),
    "exp2": _math("exp2"),
    "sigmoid": _sigmoid,
    "relu": _relu,
    "abs": _abs,
    "sign": _sign,
    "reciprocal": _reciprocal,
    "rsqrt": _rsqrt,
    "floor": _rounding("floor"), "ceil": _rounding("ceil"), "round": _rounding("roundeven"),
    "trunc": _rounding("trunc"),
    "cast": lambda b, a, dt, at: b.convert(a[0], dt, at["dtype"]),
    "where": lambda b, a, dt, at: b.select(a[0], a[1], a[2], dt),
    "masked_fill": lambda b, a, dt, at: b.select(a[1], a[2], a[0], dt),
    "clone": lambda b, a, dt, at: a[0],
    "clamp": _clamp,
    "fma": lambda b, a, dt, at: b.fma(a[0], a[1], a[2], dt),
}


def has_rule(name: str) -> bool:
    return name in _RULES


# -- accumulators and index arithmetic (shared by both printers) ---------------------------

def identity(kind: str, dt):
    """The start value of an accumulator of `kind` (what codegen initializes it to)."""
    if kind == "sum":
        return 0
    if kind == "prod":
        return 1
    low = kind in ("max", "argmax")
    if dt.is_floating_point:
        return -math.inf if low else math.inf
    if dt is bool_:
        return not low
    bits = dt.itemsize * 8
    return -(2 ** (bits - 1)) if low else 2 ** (bits - 1) - 1


def combine(b: ScalarBuilder, kind: str, acc: str, v: str, dt) -> str:
    """acc (+) v for a sum/prod/max/min accumulator, as codegen combines it."""
    if kind == "sum":
        if dt.is_floating_point:
            return b.op(f"arith.addf {acc}, {v} fastmath<reassoc,contract> : {mlir_type(dt)}")
        return b.binary("", "addi", acc, v, dt, "ori")
    if kind == "prod":
        if dt.is_floating_point:
            return b.op(f"arith.mulf {acc}, {v} fastmath<reassoc,contract> : {mlir_type(dt)}")
        return b.binary("", "muli", acc, v, dt, "andi")
    if dt.is_floating_point:
        return b.minmax("max" if kind == "max" else "min", acc, v, dt)
    better = b.compare(">" if kind == "max" else "<", v, acc, dt)
    return b.select(better, v, acc, dt)


def arg_better(b: ScalarBuilder, low: bool, v: str, cur: str, dt) -> str:
    """Whether `v` replaces the current best of an argmax (low) / argmin: NaN wins and stays."""
    better = b.compare(">" if low else "<", v, cur, dt)
    if dt.is_floating_point:
        t = mlir_type(dt)
        v_nan = b.op(f"arith.cmpf uno, {v}, {v} : {t}")
        cur_ok = b.op(f"arith.cmpf ord, {cur}, {cur} : {t}")
        better = b.op(f"arith.ori {better}, {b.op(f'arith.andi {v_nan}, {cur_ok} : i1')} : i1")
    return better


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
