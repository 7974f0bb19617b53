"""The scalar builder: the one interface every op's scalar rule is written against.

An elementwise op of the op table says what it computes on one element as a rule
`rule(s, args, dt, attrs)`, where `s` is a `Scalar` builder, `args` are its arguments already
in the compute dtype `dt`, and the result is in the op's output dtype. Two builders implement
the primitives below: LLVM IR for the code that runs (compiler/codegen.py) and MLIR's arith
and math dialects for the dumps and the MLIR backend (compiler/mlir_scalar.py). So each op is
written once, and the MLIR text says what the LLVM code computes.

Primitives (a backend implements each; `dt` is the dtype of the operands):
    const(value, dt)             a constant
    convert(v, src, dst)         PyTorch's conversion (to bool: != 0; floats to ints truncate)
    unsigned_to_float(v, src, dst)   an integer read as unsigned
    binary(op, a, b, dt)         add sub mul div (floats; ints wrap) max min (NaN-propagating
                                 for floats) and or xor shr (integers and bools)
    compare(pred, a, b, dt)      == != < <= > >= (ordered for floats except !=: NaN compares
                                 false except for !=; bools unsigned, ints signed)
    select(cond, a, b, dt)       cond ? a : b
    neg(x, dt), not_(x)          arithmetic negation; logical not of a bool
    math(fn, x, dt)              exp log sqrt sin cos tanh sigmoid log1p expm1 exp2 erf fabs
                                 floor ceil roundeven trunc (floats)
    fma(a, b, c, dt)             a * b + c
    pow(x, y, dt)                x ** y (integers through float64, as PyTorch's CPU kernel)
    reassociable(op, a, b, dt)   a float add or mul the optimizer may reorder (reductions)
"""

from __future__ import annotations

from .dtypes import DType, bool_


class Scalar:
    """The primitives (implemented by a backend) and what they compose (shared)."""

    def const(self, value, dt: DType):
        raise NotImplementedError

    def convert(self, v, src: DType, dst: DType):
        raise NotImplementedError

    def unsigned_to_float(self, v, src: DType, dst: DType):
        raise NotImplementedError

    def binary(self, op: str, a, b, dt: DType):
        raise NotImplementedError

    def compare(self, pred: str, a, b, dt: DType):
        raise NotImplementedError

    def select(self, cond, a, b, dt: DType):
        raise NotImplementedError

    def neg(self, x, dt: DType):
        raise NotImplementedError

    def not_(self, x):
        raise NotImplementedError

    def math(self, fn: str, x, dt: DType):
        raise NotImplementedError

    def fma(self, a, b, c, dt: DType):
        raise NotImplementedError

    def pow(self, x, y, dt: DType):
        raise NotImplementedError

    def reassociable(self, op: str, a, b, dt: DType):
        raise NotImplementedError

    # -- composed from the primitives (a backend may do better, as LLVM's does for sigmoid) --
    def sigmoid(self, x, dt: DType):
        one = self.const(1.0, dt)
        return self.binary("div", one, self.binary("add", one, self.math("exp", self.neg(x, dt), dt), dt), dt)

    def pow_const(self, x, p, dt: DType):
        """x ** p for a compile-time exponent: multiplications where exact, as PyTorch does (an
        integer power always: at most two per bit of the exponent, wrapping like PyTorch's)."""
        if (float(p).is_integer() and abs(p) <= 64) or not dt.is_floating_point:
            n, result, base = int(abs(p)), None, x
            while n:  # square-and-multiply
                if n & 1:
                    result = base if result is None else self.binary("mul", result, base, dt)
                n >>= 1
                if n:
                    base = self.binary("mul", base, base, dt)
            if result is None:
                result = self.const(1, dt)
            if p < 0:
                result = self.binary("div", self.const(1.0, dt), result, dt)
            return result
        if p == 0.5:
            return self.math("sqrt", x, dt)
        if p == -0.5:
            return self.binary("div", self.const(1.0, dt), self.math("sqrt", x, dt), dt)
        return self.pow(x, self.const(p, dt), dt)


# -- reductions ----------------------------------------------------------------------------


class Reduction:
    """One kind of accumulation: its start value and how it takes in one more value.

    For arg kinds (argmax/argmin) `better` says whether a value replaces the best so far (its
    position is kept alongside by whoever runs the loop)."""

    def __init__(self, kind: str, combine_op: str | None, low: bool | None, op: str | None) -> None:
        self.kind, self.combine_op, self.low = kind, combine_op, low
        self.is_arg = kind.startswith("arg")
        self.op = op  # the elementwise op (of the op table) that combines two partial results

    def identity(self, dt: DType):
        if self.kind == "sum":
            return 0
        if self.kind == "prod":
            return 1
        if dt.is_floating_point:
            return -float("inf") if self.low else float("inf")
        if dt is bool_:
            return not self.low
        bits = dt.itemsize * 8
        return -(2 ** (bits - 1)) if self.low else 2 ** (bits - 1) - 1

    def combine(self, s: Scalar, acc, v, dt: DType):
        """acc (+) v. Float sums and products are reassociable (they vectorize); bool sums are
        `or`, products `and`; float max/min propagate NaN."""
        if self.kind in ("sum", "prod"):
            if dt is bool_:
                return s.binary("or" if self.kind == "sum" else "and", acc, v, dt)
            if dt.is_floating_point:
                return s.reassociable(self.combine_op, acc, v, dt)
            return s.binary(self.combine_op, acc, v, dt)
        if dt.is_floating_point:
            return s.binary(self.combine_op, acc, v, dt)
        return s.select(self.better(s, v, acc, dt), v, acc, dt)

    def better(self, s: Scalar, v, best, dt: DType):
        """Whether `v` replaces `best`: strictly greater (max) / smaller (min); for floats a NaN
        wins and then stays (PyTorch's max/argmax propagate NaN)."""
        better = s.compare(">" if self.low else "<", v, best, dt)
        if dt.is_floating_point:
            v_nan = s.compare("!=", v, v, dt)
            best_ok = s.compare("==", best, best, dt)
            better = s.binary("or", better, s.binary("and", v_nan, best_ok, bool_), bool_)
        return better


REDUCTIONS = {r.kind: r for r in (
    Reduction("sum", "add", None, "add"), Reduction("prod", "mul", None, "mul"),
    Reduction("max", "max", True, "maximum"), Reduction("min", "min", False, "minimum"),
    Reduction("argmax", None, True, None), Reduction("argmin", None, False, None),
)}
