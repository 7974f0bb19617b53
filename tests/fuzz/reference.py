"""Reference values for the fuzzer: NumPy in float64, with PyTorch's dtype rules and a
running error bound per element.

A reference value (`RV`) holds its elements in float64 for floating dtypes (rounded to
the dtype after every op, as a float32 kernel rounds), int64 for integer dtypes (wrapped
to int32 where the dtype is int32) and bool. With `Ctx.track` set it also carries `err`:
an elementwise bound on how far a correct float implementation may be from the value
(rounding of every op so far, propagated through the later ops). An infinite bound
means "undecidable": a comparison too close to call, a division across zero, an index
computed from such a value. The checker compares only elements with a finite bound,
and counts how many it skipped.

Independent of llgrad on purpose: nothing here imports it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

FLOATS = ("float32", "float64")
INTS = ("int32", "int64")
DTYPES = FLOATS + INTS + ("bool",)
NP = {"float32": np.float32, "float64": np.float64, "int32": np.int32, "int64": np.int64, "bool": np.bool_}
UNIT = {"float32": 2.0**-24, "float64": 2.0**-53}  # unit roundoff
# Rounding into the subnormal range errs by up to half the smallest subnormal, however small the
# result: fl(x) = x (1 + d) + e with |d| <= UNIT, |e| <= ETA (the underflow term of the standard
# model). Later ops carry it: a sum of 256 subnormal products times numbers near 1 is off by
# hundreds of subnormal steps, not one.
ETA = {"float32": 2.0**-150, "float64": 2.0**-1075}
_CATEGORY = {"bool": 0, "int32": 1, "int64": 1, "float32": 2, "float64": 2}
_RANK = {"bool": 0, "int32": 1, "int64": 2, "float32": 1, "float64": 2}


def is_float(dtype: str) -> bool:
    return dtype in FLOATS


@dataclass
class RV:
    """A reference tensor value."""

    value: np.ndarray
    dtype: str
    err: np.ndarray | None = None

    @property
    def shape(self) -> tuple:
        return tuple(self.value.shape)

    @property
    def kind(self) -> str:
        return "dim" if self.value.ndim else "zero"


@dataclass
class Ctx:
    """What one reference evaluation tracks: error bounds, and whether any decision that
    gradients depend on (a kink, a tie, a comparison) was too close to call."""

    track: bool = True
    ambiguous: bool = False
    notes: list = field(default_factory=list)

    def flag(self, why: str) -> None:
        self.ambiguous = True
        if len(self.notes) < 8:
            self.notes.append(why)


# -- dtypes ---------------------------------------------------------------------------


def scalar_dtype(x) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "bool"
    if isinstance(x, (int, np.integer)):
        return "int64"
    return "float32"


def promote(a: str, b: str) -> str:
    if a == b:
        return a
    if _CATEGORY[a] != _CATEGORY[b]:
        return a if _CATEGORY[a] > _CATEGORY[b] else b
    return a if _RANK[a] >= _RANK[b] else b


def result_type(args) -> str:
    """torch.result_type over tensors (RV) and Python numbers: tensors with dims decide,
    unless a 0-d tensor or a Python number is of a higher category (bool < int < float)."""
    levels: dict = {"dim": None, "zero": None, "scalar": None}
    for a in args:
        dt, kind = (a.dtype, a.kind) if isinstance(a, RV) else (scalar_dtype(a), "scalar")
        levels[kind] = dt if levels[kind] is None else promote(levels[kind], dt)
    return _combine(levels["dim"], _combine(levels["zero"], levels["scalar"]))


def _combine(higher: str | None, lower: str | None) -> str | None:
    if higher is None or lower is None:
        return lower if higher is None else higher
    if is_float(higher):
        return higher
    if higher == "bool" or is_float(lower):
        return promote(higher, lower)
    return higher


def to_float_dtype(dt: str) -> str:
    return dt if is_float(dt) else "float32"


# -- values -------------------------------------------------------------------------------


def round_to(values, dtype: str) -> np.ndarray:
    """Values (float64, int64 or bool arrays) stored as `dtype` would hold them."""
    values = np.asarray(values)
    with np.errstate(all="ignore"):
        if dtype == "bool":
            return values.astype(bool) if values.dtype != bool else values
        if dtype in INTS:
            if values.dtype.kind == "f":
                values = np.trunc(values)
                values = np.where(np.isfinite(values), values, 0)
            return values.astype(np.int64).astype(NP[dtype]).astype(np.int64)
        return values.astype(np.float64).astype(NP[dtype]).astype(np.float64)


def leaf(array: np.ndarray, track: bool) -> RV:
    dtype = np.dtype(array.dtype).name
    store = round_to(array, dtype)
    return RV(store, dtype, np.zeros(store.shape) if track else None)


def converted(a, dtype: str, ctx: Ctx) -> RV:
    """An operand (RV or Python number) converted to `dtype`, its error bound widened by
    the rounding of the conversion."""
    if not isinstance(a, RV):
        value = round_to(np.asarray(a, dtype=np.float64 if isinstance(a, float) else None), dtype)
        return RV(value, dtype, np.zeros(()) if ctx.track else None)
    if a.dtype == dtype:
        return a
    value = round_to(a.value, dtype)
    err = None
    if ctx.track:
        err = a.err
        if dtype == "bool" or (dtype in INTS and is_float(a.dtype)):
            err = discrete_err(a, lambda v: round_to(v, dtype))
        elif is_float(dtype):
            err = err + UNIT[dtype] * np.abs(value) + ETA[dtype]
    return RV(value, dtype, err)


def discrete_err(a: RV, f) -> np.ndarray:
    """inf where moving `a` within its bound can change f(a), else 0."""
    err = np.zeros(a.shape)
    if not is_float(a.dtype):
        return np.where(np.isfinite(a.err), 0.0, np.inf)
    center = f(a.value)
    for s in (-1, 1):
        moved = f(a.value + s * np.where(np.isfinite(a.err), a.err, 0))
        err = np.maximum(err, np.where(_same(moved, center), 0.0, np.inf))
    return np.where(np.isfinite(a.err), err, np.inf)


def _same(a, b) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        return (a == b) | (np.isnan(a) & np.isnan(b))
    return a == b


def deviation(moved, center) -> np.ndarray:
    """|moved - center|, 0 for equal values (infinities, NaN and NaN), inf where only one is NaN."""
    with np.errstate(all="ignore"):
        d = np.abs(np.asarray(moved, dtype=np.float64) - center)
    d = np.where(_same(moved, center), 0.0, d)
    return np.where(np.isnan(d), np.inf, d)


def sanitize(err: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(err), np.inf, err)


def elementwise(
    ctx: Ctx,
    f,
    args: list,
    compute: str,
    out: str,
    *,
    k: float = 1.0,
    floor: float = 0.0,
    discrete: bool = False,
    branch=None,
) -> RV:
    """Apply numpy function `f` to the operands converted to `compute`; round to `out`.

    k, floor: the op's own error in units of `out`'s roundoff, relative to |result| + floor.
    discrete: the result jumps (comparisons, rounding): any possible change is undecidable.
    branch: a function of the operands naming the piece of a piecewise op (relu, maximum...):
    when it can change within the operands' bounds, gradients are ambiguous.
    """
    ops = [converted(a, compute, ctx) for a in args]
    vals = [o.value for o in ops]
    with np.errstate(all="ignore"):
        center = round_to(f(*vals), out)
    if not ctx.track:
        return RV(center, out)
    shape = center.shape
    errs = [np.broadcast_to(o.err, shape) for o in ops]
    unknown = np.zeros(shape, bool)
    for e in errs:
        unknown |= ~np.isfinite(e)
    moving = [i for i, o in enumerate(ops) if is_float(o.dtype) and np.any(errs[i][np.isfinite(errs[i])] > 0)]
    dev = np.zeros(shape)
    branches = [branch(*vals)] if branch is not None else []
    with np.errstate(all="ignore"):
        exact = f(*vals)
        for signs in itertools.product((-1.0, 1.0), repeat=len(moving)):
            moved = list(vals)
            for i, s in zip(moving, signs):
                moved[i] = vals[i] + s * np.where(np.isfinite(errs[i]), errs[i], 0.0)
            result = f(*moved)
            if discrete:
                dev = np.maximum(dev, np.where(_same(result, exact), 0.0, np.inf))
            else:
                dev = np.maximum(dev, deviation(result, exact))
            if branch is not None:
                branches.append(branch(*moved))
        if discrete or not is_float(out):
            own = 0.0
        else:
            own = k * UNIT[out] * (np.abs(np.where(np.isfinite(center), center, 0.0)) + floor) + k * ETA[out]
    err = np.where(unknown, np.inf, dev + own)
    if branch is not None:
        base = np.broadcast_to(branches[0], shape)
        for b in branches[1:]:
            if np.any(~_same(np.broadcast_to(b, shape), base) & ~unknown):
                ctx.flag(f"kink near a branch point ({getattr(f, '__name__', 'op')})")
                break
    if np.any(np.isinf(err) & ~unknown) or (discrete and np.any(unknown)):
        ctx.flag("a discrete or singular result is too close to call")
    return RV(center, out, sanitize(err))


def same_layout(ctx: Ctx, a: RV, fn, dtype: str | None = None) -> RV:
    """A movement op: `fn` applied to the values and the error bounds alike."""
    value = fn(a.value)
    return RV(np.asarray(value), dtype or a.dtype, np.asarray(fn(a.err)) if ctx.track else None)
