"""Counter-based random numbers: `rand_uniform(counter, key)` hashes each element's counter.

The value at an element is a pure function of (key, counter): SplitMix64's
output for the state `mix(key) + counter * golden_gamma`. Nothing is stateful
in compiled code, so a kernel can compute the same random value twice (the
forward and backward of dropout inline it where they need it) and fusion
never changes the numbers. The frontend passes the key and the counter
offset as run-time scalars, so a new mask each step costs no recompile.

The counter is an int64 tensor (usually `iota + offset`); `dtype` is float32
(24 random bits) or float64 (53 bits); values are uniform in [0, 1).
"""

from __future__ import annotations

from .. import dtypes
from ..graph import OpDef
from . import register
from .shapes import broadcast

_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment (the golden ratio in 64 bits)
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def _infer(srcs, attrs):
    counter, key = srcs
    for name, s in (("counter", counter), ("key", key)):
        if s.dtype is not dtypes.int64:
            raise RuntimeError(f"rand_uniform: {name} must be int64, got {s.dtype}")
    if key.shape:
        raise RuntimeError(f"rand_uniform: key must be 0-d, got shape {list(key.shape)}")
    dt = attrs.setdefault("dtype", dtypes.float32)
    if not dt.is_floating_point:
        raise RuntimeError(f"rand_uniform: dtype must be floating point, got {dt}")
    return broadcast(counter.shape, key.shape), dt


def _compute(node):
    return (dtypes.int64, dtypes.int64), dtypes.int64


def mix64(s, z):
    """SplitMix64's finalizer: a bijection of 64-bit integers with full avalanche."""
    i64 = dtypes.int64
    for shift, multiplier in ((30, _M1), (27, _M2)):
        z = s.binary("mul", s.binary("xor", z, s.binary("shr", z, s.const(shift, i64), i64), i64),
                     s.const(multiplier, i64), i64)
    return s.binary("xor", z, s.binary("shr", z, s.const(31, i64), i64), i64)


def _rule(s, args, dt, attrs):
    i64 = dtypes.int64
    counter, key = args
    # mix(key) is loop-invariant: LLVM hoists it out of the element loop.
    one = s.const(1, i64)
    state = s.binary("add", mix64(s, key),
                     s.binary("mul", s.binary("add", counter, one, i64), s.const(_GAMMA, i64), i64), i64)
    bits = mix64(s, state)
    out = attrs["dtype"]
    keep = 24 if out is dtypes.float32 else 53  # as many bits as the mantissa holds: exact in [0, 1)
    top = s.binary("shr", bits, s.const(64 - keep, i64), i64)
    return s.binary("mul", s.unsigned_to_float(top, i64, out), s.const(2.0 ** -keep, out), out)


# Not differentiable (no VJP): a random mask is a constant of the computation.
register(OpDef("rand_uniform", "elementwise", _infer, scalar=_rule, compute=_compute))
