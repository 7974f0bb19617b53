"""The error function and GELU.

`erf` computes float32 by a branch-free rational approximation (Eigen's and
XLA's erf: x * P(x^2) / Q(x^2) on x clamped to [-4, 4], where float32 erf is
already +-1), so loops using it vectorize; max relative error ~4e-7 (tests
compare with math.erf). float64 calls libm's erf.

`gelu` is a composite with PyTorch's backward node (GeluBackward0), lowered
to erf (approximate="none") or tanh (approximate="tanh").
"""

from __future__ import annotations

import math

from ..dtypes import float32
from ..graph import OpDef
from . import register
from .elementwise import _compute_out, _float_infer

# Odd numerator and even denominator, highest power first.
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _rule_erf(s, args, dt, attrs):
    (x,) = args
    if dt is not float32:
        return s.math("erf", x, dt)
    # maximum/minimum propagate NaN, so erf(NaN) is NaN.
    xc = s.binary("min", s.binary("max", x, s.const(-4.0, dt), dt), s.const(4.0, dt), dt)
    x2 = s.binary("mul", xc, xc, dt)

    def poly(coeffs):
        acc = s.const(coeffs[0], dt)
        for k in coeffs[1:]:
            acc = s.fma(acc, x2, s.const(k, dt), dt)
        return acc

    return s.binary("div", s.binary("mul", xc, poly(_ERF_P), dt), poly(_ERF_Q), dt)


def _vjp_erf(e, g, c):
    x = c.srcs[0]
    return (e.mul(g, e.mul(e.exp(e.neg(e.mul(x, x))), _TWO_OVER_SQRT_PI)),)


register(OpDef("erf", "elementwise", _float_infer, scalar=_rule_erf, compute=_compute_out, vjp=_vjp_erf,
               saves={0: (0,)}, grad_fn="ErfBackward0"))


# -- GELU ----------------------------------------------------------------------------------

_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_BETA = math.sqrt(2.0) * _TWO_OVER_SQRT_PI * 0.5  # sqrt(2 / pi)
_KAPPA = 0.044715


def _gelu_infer(srcs, attrs):
    (x,) = srcs
    approximate = attrs.setdefault("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"\"GeluKernelImpl\" not implemented for '{x.dtype.name}'")
    return x.shape, x.dtype


def _tanh_inner(e, x):
    return e.tanh(e.mul(e.add(x, e.mul(e.mul(e.mul(x, x), x), _KAPPA)), _BETA))


def _decompose_gelu(e, srcs, attrs):
    (x,) = srcs
    if attrs["approximate"] == "tanh":
        return e.mul(e.mul(x, 0.5), e.add(_tanh_inner(e, x), 1.0))
    return e.mul(e.mul(x, 0.5), e.add(e.erf(e.mul(x, _SQRT1_2)), 1.0))


def _vjp_gelu(e, g, c):
    x = c.srcs[0]
    if c.attrs["approximate"] == "tanh":  # PyTorch's GeluBackward formula
        t = _tanh_inner(e, x)
        left = e.mul(x, 0.5)
        right_derivative = e.mul(e.mul(left, e.rsub(e.mul(t, t), 1.0)),
                                 e.mul(e.add(e.mul(e.mul(x, x), 3.0 * _KAPPA), 1.0), _BETA))
        return (e.mul(g, e.add(e.mul(e.add(t, 1.0), 0.5), right_derivative)),)
    cdf = e.mul(e.add(e.erf(e.mul(x, _SQRT1_2)), 1.0), 0.5)
    pdf = e.mul(e.exp(e.mul(e.mul(x, x), -0.5)), _INV_SQRT_2PI)
    return (e.mul(g, e.add(cdf, e.mul(x, pdf))),)


register(OpDef("gelu", "composite", _gelu_infer, decompose=_decompose_gelu, vjp=_vjp_gelu,
               saves={0: (0,)}, grad_fn="GeluBackward0"))
