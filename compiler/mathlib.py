"""float32 exp, log, tanh and sigmoid written in LLVM IR, so loops using them vectorize.

LLVM turns `llvm.exp.f32` and friends into scalar libm calls inside loops
(see FACTS.md); these branch-free polynomial versions (Cephes' coefficients,
range reduction by powers of two) inline and vectorize. Accuracy: a few ulp
over the whole float range, with IEEE handling of inf, NaN and underflow;
tests compare them with NumPy. float64 uses libm through the intrinsics.
"""

from __future__ import annotations

from llvmlite import ir

F32 = ir.FloatType()
I32 = ir.IntType(32)
I1 = ir.IntType(1)

_LOG2E = 1.44269504088896341
_LN2_HI = 0.693359375
_LN2_LO = -2.12194440e-4
_EXP_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
             1.6666665459e-1, 5.0000001201e-1)
_LOG_POLY = (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
             1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
             3.3333331174e-1)
_TANH_POLY = (-5.70498872745e-3, 2.06390887954e-2, -5.37397344004e-2, 1.33314422036e-1,
              -3.33332819422e-1)


def _c(v: float) -> ir.Constant:
    return ir.Constant(F32, v)


class _F32Builder:
    """Small helpers over an IRBuilder for float32 scalar code."""

    def __init__(self, b: ir.IRBuilder, module: ir.Module) -> None:
        self.b = b
        self.module = module

    def intrinsic(self, name: str, args: list) -> ir.Value:
        fnty = ir.FunctionType(F32, [F32] * len(args))
        full = f"{name}.f32"
        fn = self.module.globals.get(full) or ir.Function(self.module, fnty, full)
        return self.b.call(fn, args)

    def fma(self, a, b, c):
        return self.intrinsic("llvm.fmuladd", [a, b, c])

    def poly(self, x, coeffs):
        acc = _c(coeffs[0])
        for k in coeffs[1:]:
            acc = self.fma(acc, x, _c(k))
        return acc

    def select(self, cond, a, b):
        return self.b.select(cond, a, b)

    def pow2(self, n):
        """2**n for an i32 n in the normal exponent range, built from its bits."""
        bits = self.b.shl(self.b.add(n, ir.Constant(I32, 127)), ir.Constant(I32, 23))
        return self.b.bitcast(bits, F32)


def _define(module: ir.Module, name: str, body) -> ir.Function:
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    fn = ir.Function(module, ir.FunctionType(F32, [F32]), name)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    b.ret(body(_F32Builder(b, module), fn.args[0]))
    return fn


def _exp_body(f: _F32Builder, x):
    b = f.b
    # Clamp so the scale factors stay finite; beyond the clamps the result
    # overflows to inf or underflows to 0 through the multiplications below.
    xc = f.select(b.fcmp_ordered(">", x, _c(89.0)), _c(89.0), x)
    xc = f.select(b.fcmp_ordered("<", xc, _c(-104.0)), _c(-104.0), xc)
    n_f = f.intrinsic("llvm.rint", [b.fmul(xc, _c(_LOG2E))])
    r = f.fma(n_f, _c(-_LN2_HI), xc)
    r = f.fma(n_f, _c(-_LN2_LO), r)
    p = f.poly(r, _EXP_POLY)
    y = f.fma(b.fmul(p, r), r, b.fadd(r, _c(1.0)))
    n = b.fptosi(n_f, I32)
    # 2**n as two factors so that n down to -150 (subnormal results) works.
    half = b.ashr(n, ir.Constant(I32, 1))
    y = b.fmul(b.fmul(y, f.pow2(half)), f.pow2(b.sub(n, half)))
    return f.select(b.fcmp_unordered("uno", x, x), x, y)


def _log_body(f: _F32Builder, x):
    b = f.b
    # Scale subnormals into the normal range first.
    tiny = b.fcmp_ordered("<", x, _c(1.17549435e-38))
    xs = f.select(tiny, b.fmul(x, _c(8388608.0)), x)
    bias = f.select(tiny, ir.Constant(I32, 23 + 126), ir.Constant(I32, 126))
    bits = b.bitcast(xs, I32)
    e = b.sub(b.lshr(bits, ir.Constant(I32, 23)), bias)
    m = b.bitcast(b.or_(b.and_(bits, ir.Constant(I32, 0x807FFFFF)), ir.Constant(I32, 0x3F000000)), F32)
    small = b.fcmp_ordered("<", m, _c(0.707106781186547524))
    e = b.sub(e, b.zext(small, I32))
    m = f.select(small, b.fsub(b.fadd(m, m), _c(1.0)), b.fsub(m, _c(1.0)))
    ef = b.sitofp(e, F32)
    z = b.fmul(m, m)
    y = b.fmul(b.fmul(f.poly(m, _LOG_POLY), m), z)
    y = f.fma(ef, _c(_LN2_LO), y)
    y = f.fma(z, _c(-0.5), y)
    r = b.fadd(m, y)
    r = f.fma(ef, _c(_LN2_HI), r)
    # Special values: log(0) = -inf, log(x<0) = NaN, log(inf) = inf, NaN stays.
    r = f.select(b.fcmp_ordered("==", x, _c(0.0)), _c(float("-inf")), r)
    r = f.select(b.fcmp_ordered("<", x, _c(0.0)), _c(float("nan")), r)
    r = f.select(b.fcmp_ordered("==", x, _c(float("inf"))), x, r)
    return f.select(b.fcmp_unordered("uno", x, x), x, r)


def _tanh_body(f: _F32Builder, x):
    b = f.b
    exp = _define(f.module, "llgrad_expf", _exp_body)
    ax = f.intrinsic("llvm.fabs", [x])
    # |x| > 0.625: 1 - 2/(exp(2|x|)+1) with the sign restored; else an odd polynomial.
    big = b.fsub(_c(1.0), b.fdiv(_c(2.0), b.fadd(b.call(exp, [b.fmul(ax, _c(2.0))]), _c(1.0))))
    big = f.intrinsic("llvm.copysign", [big, x])
    z = b.fmul(x, x)
    small = f.fma(b.fmul(f.poly(z, _TANH_POLY), z), x, x)
    return f.select(b.fcmp_ordered(">", ax, _c(0.625)), big, small)


def _sigmoid_body(f: _F32Builder, x):
    b = f.b
    exp = _define(f.module, "llgrad_expf", _exp_body)
    return b.fdiv(_c(1.0), b.fadd(_c(1.0), b.call(exp, [b.fneg(x)])))


_BODIES = {"exp": _exp_body, "log": _log_body, "tanh": _tanh_body, "sigmoid": _sigmoid_body}


def has_f32(name: str) -> bool:
    return name in _BODIES


def f32_function(module: ir.Module, name: str) -> ir.Function:
    """The module's vectorizable float32 `name` function, defined on first use."""
    return _define(module, f"llgrad_{name}f", _BODIES[name])
