"""The fuzzer's op catalog: how each op is written (PyTorch's API, so the same text runs on
llgrad and on PyTorch) and its NumPy reference with error bounds.

`render(args, attrs)` gives the op's expression from its rendered arguments;
`ref(ctx, args, attrs)` computes its reference value from RVs and Python numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .reference import (
    ETA,
    FLOATS,
    INTS,
    RV,
    UNIT,
    converted,
    discrete_err,
    elementwise,
    is_float,
    result_type,
    round_to,
    same_layout,
    sanitize,
    to_float_dtype,
)


@dataclass
class Op:
    name: str
    render: Callable
    ref: Callable
    inplace: bool = False  # writes into args[0]: later reads of it and of its aliases see the result
    statement: bool = False  # written as a statement (x[i] = v); the step's value is args[0]


OPS: dict[str, Op] = {}


def op(name: str, render, **flags):
    """Register the decorated reference under `name`; render is a format string or function."""
    if isinstance(render, str):
        template = render

        def render(args, attrs, template=template):
            return template.format(*args, **attrs)

    def register(ref):
        OPS[name] = Op(name, render, ref, **flags)
        return ref

    return register


def evaluate(node, values: list, roots: list, ctx) -> None:
    """Append the reference value of step `node` to `values`, with PyTorch's aliasing: an
    in-place op changes its target, and every earlier name for the target sees the change
    (`roots[i]` names the tensor object value i is). Views of an in-place target are never
    generated, so no other name can see it."""
    args = [_resolve(a, values) for a in node.args]
    out = OPS[node.op].ref(ctx, args, node.attrs)
    if not OPS[node.op].inplace:
        values.append(out)
        roots.append(len(roots))
        return
    value, target = out if isinstance(out, tuple) else (out, out)  # (the step's value, the target's)
    root = roots[node.args[0].index]
    for j, r in enumerate(roots):
        if r == root:
            values[j] = target
    values.append(value)
    roots.append(root if value is target else len(roots))


def _resolve(a, values):
    if isinstance(a, tuple):
        return tuple(_resolve(x, values) for x in a)
    return values[a.index] if hasattr(a, "index") else a


# -- elementwise ------------------------------------------------------------------------


def _binary(name: str, template: str, f, *, float_result: bool = False, k: float = 1.0, branch=None):
    @op(name, template)
    def ref(ctx, args, attrs):
        dt = result_type(args)
        if float_result:
            dt = to_float_dtype(dt)
        return elementwise(ctx, f, list(args), dt, dt, k=k, branch=branch)


def _add(a, b):
    return a | b if a.dtype == bool else a + b


def _mul(a, b):
    return a & b if a.dtype == bool else a * b


def _pow(a, b):
    if a.dtype.kind != "f":  # integer powers (non-negative exponents only are generated)
        return np.power(a, b)
    return np.power(a, b)


_binary("add", "{0} + {1}", _add)
_binary("sub", "{0} - {1}", np.subtract)
_binary("mul", "{0} * {1}", _mul)
_binary("div", "{0} / {1}", np.divide, float_result=True)
_binary("pow", "{0} ** {1}", _pow, k=4)


def _order(a, b):
    """Which operand is larger (the piece of maximum/minimum in use), for bools too."""
    return np.greater(a, b).astype(np.int8) - np.less(a, b).astype(np.int8)


_binary("maximum", "torch.maximum({0}, {1})", np.maximum, k=0, branch=_order)
_binary("minimum", "torch.minimum({0}, {1})", np.minimum, k=0, branch=_order)


def _compare(name: str, template: str, f):
    @op(name, template)
    def ref(ctx, args, attrs):
        return elementwise(ctx, f, list(args), result_type(args), "bool", discrete=True)


for _n, _sym, _f in (
    ("eq", "==", np.equal),
    ("ne", "!=", np.not_equal),
    ("lt", "<", np.less),
    ("le", "<=", np.less_equal),
    ("gt", ">", np.greater),
    ("ge", ">=", np.greater_equal),
):
    _compare(_n, "{0} " + _sym + " {1}", _f)


@op("logical_and", "{0} & {1}")
def _logical_and(ctx, args, attrs):
    return elementwise(ctx, np.logical_and, list(args), "bool", "bool", discrete=True)


@op("logical_or", "{0} | {1}")
def _logical_or(ctx, args, attrs):
    return elementwise(ctx, np.logical_or, list(args), "bool", "bool", discrete=True)


@op("logical_not", "~{0}")
def _logical_not(ctx, args, attrs):
    return elementwise(ctx, np.logical_not, list(args), "bool", "bool", discrete=True)


@op("invert", "~{0}")
def _invert(ctx, args, attrs):
    """Bitwise not of integers (logical not of bools)."""
    (x,) = args
    return elementwise(ctx, np.invert, [x], x.dtype, x.dtype, discrete=True)


# name: (numpy function, float result, k, floor, branch)
_UNARY = {
    "neg": (np.negative, False, 0, 0, None),
    "exp": (np.exp, True, 8, 0, None),
    "log": (np.log, True, 8, 1, None),
    "tanh": (np.tanh, True, 8, 0, None),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), True, 8, 0, None),
    "relu": (lambda x: np.where(x < 0, np.zeros((), x.dtype), x), False, 0, 0, lambda x: np.sign(x)),
    "abs": (np.abs, False, 0, 0, lambda x: np.sign(x)),
    "sqrt": (np.sqrt, True, 1, 0, None),
    "sin": (np.sin, True, 4, 0, None),
    "reciprocal": (lambda x: 1 / x, True, 1, 0, None),
    "square": (np.square, False, 1, 0, None),
    "log1p": (np.log1p, True, 4, 0, None),
    "expm1": (np.expm1, True, 4, 0, None),
    "rsqrt": (lambda x: 1 / np.sqrt(x), True, 2, 0, None),
}
_METHOD = {"neg": "-{0}", "abs": "{0}.abs()", "square": "{0}.square()", "relu": "torch.relu({0})"}


def _unary(name: str, f, to_float: bool, k: float, floor: float, branch):
    @op(name, _METHOD.get(name, "torch." + name + "({0})"))
    def ref(ctx, args, attrs):
        (x,) = args
        dt = to_float_dtype(x.dtype) if to_float else x.dtype
        return elementwise(ctx, f, [x], dt, dt, k=k, floor=floor, branch=branch)


for _n, (_f, _tf, _k, _floor, _br) in _UNARY.items():
    _unary(_n, _f, _tf, _k, _floor, _br)


def _discrete_unary(name: str, template: str, f):
    @op(name, template)
    def ref(ctx, args, attrs):
        (x,) = args
        if not is_float(x.dtype):  # identity on integers (sign of bool too)
            return x if name != "sign" else elementwise(ctx, np.sign, [x], x.dtype, x.dtype, discrete=True)
        return elementwise(ctx, f, [x], x.dtype, x.dtype, discrete=True)


_discrete_unary("sign", "torch.sign({0})", lambda x: np.where(np.isnan(x), 0.0, np.sign(x)))  # sign(NaN) = 0
_discrete_unary("floor", "torch.floor({0})", np.floor)
_discrete_unary("round", "torch.round({0})", np.round)


@op("where", "torch.where({0}, {1}, {2})")
def _where(ctx, args, attrs):
    cond, a, b = args
    dt = result_type([a, b])
    a, b = converted(a, dt, ctx), converted(b, dt, ctx)
    value = np.where(cond.value, a.value, b.value)
    err = None
    if ctx.track:
        picked = np.where(cond.value, a.err, b.err)
        err = np.where(np.isfinite(np.broadcast_to(cond.err, value.shape)), picked, np.inf)
    return RV(value, dt, err)


def _render_clamp(args, attrs):
    lo, hi = args[1], args[2]
    return f"torch.clamp({args[0]}, min={lo}, max={hi})"


def _clamp_f(x, lo, hi):
    return np.minimum(np.maximum(x, lo), hi)


@op("clamp", _render_clamp)
def _clamp(ctx, args, attrs):
    x, lo, hi = args
    present = [a for a in args if a is not None]
    dt = result_type(present)
    if lo is None:
        return elementwise(ctx, np.minimum, [x, hi], dt, dt, k=0, branch=_order)
    if hi is None:
        return elementwise(ctx, np.maximum, [x, lo], dt, dt, k=0, branch=_order)
    return elementwise(
        ctx, _clamp_f, [x, lo, hi], dt, dt, k=0, branch=lambda x, lo, hi: _order(x, lo) + 3 * _order(x, hi)
    )


_CAST = {"float": "float32", "double": "float64", "long": "int64", "int": "int32", "bool": "bool"}


def _cast(method: str, dtype: str):
    @op(method, "{0}." + method + "()")
    def ref(ctx, args, attrs):
        (x,) = args
        return converted(x, dtype, ctx)


for _m, _dt in _CAST.items():
    _cast(_m, _dt)


# -- reductions ------------------------------------------------------------------------------


def _axes(shape: tuple, dims) -> tuple:
    if dims is None:
        return tuple(range(len(shape)))
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if not shape:
        return ()
    return tuple(sorted({d % len(shape) for d in dims})) or tuple(range(len(shape)))


def _reduce_args(attrs) -> str:
    dims = attrs.get("dims", attrs.get("dim"))
    return "" if dims is None else f"{dims!r}, keepdim={attrs['keepdim']}"


def _count(shape: tuple, axes: tuple) -> int:
    return math.prod(shape[a] for a in axes)


def _reduce_float(ctx, x: RV, f, axes, keepdim, dt) -> np.ndarray:
    with np.errstate(all="ignore"):
        return round_to(f(x.value.astype(np.float64), axis=axes, keepdims=keepdim), dt)


def _sum_dtype(x: RV) -> str:
    return x.dtype if is_float(x.dtype) else "int64"


@op("sum", lambda a, at: f"{a[0]}.sum({_reduce_args(at)})")
def _sum(ctx, args, attrs):
    (x,) = args
    axes, keep = _axes(x.shape, attrs["dims"]), attrs["keepdim"]
    dt = _sum_dtype(x)
    if not is_float(dt):
        value = np.sum(x.value.astype(np.int64), axis=axes, keepdims=keep)
        err = np.sum(x.err, axis=axes, keepdims=keep) if ctx.track else None
        return RV(np.asarray(value), dt, None if err is None else np.asarray(err))
    value = _reduce_float(ctx, x, np.sum, axes, keep, dt)
    err = None
    if ctx.track:
        n = _count(x.shape, axes)
        own = (n + 1) * (UNIT[dt] * np.sum(np.abs(x.value), axis=axes, keepdims=keep) + ETA[dt])
        err = sanitize(np.sum(x.err, axis=axes, keepdims=keep) + own)
    return RV(np.asarray(value), dt, err)


@op("mean", lambda a, at: f"{a[0]}.mean({_reduce_args(at)})")
def _mean(ctx, args, attrs):
    (x,) = args
    n = _count(x.shape, _axes(x.shape, attrs["dims"]))
    total = _sum(ctx, args, attrs)
    with np.errstate(all="ignore"):
        value = round_to(total.value / n, x.dtype)
        own = UNIT[x.dtype] * np.abs(value) + ETA[x.dtype]
        err = None if not ctx.track else sanitize(total.err / n + own)
        if ctx.track and n == 0:
            err = np.zeros(value.shape)  # 0/0: NaN, exactly
    return RV(np.asarray(value), x.dtype, None if err is None else np.asarray(err))


def _winner_ambiguous(ctx, x: RV, axes, keep, sign: float) -> np.ndarray:
    """Per reduced slice: could a different element win within the error bounds?"""
    v = sign * x.value.astype(np.float64)
    e = x.err
    with np.errstate(all="ignore"):
        best = np.max(v, axis=axes, keepdims=True)
        lower = np.max(v - e, axis=axes, keepdims=True)
        possible = v + e >= lower
        exact = (e == 0) & (v == best)
        unsure = np.any(~np.isfinite(e), axis=axes, keepdims=True)
        many = np.sum(possible, axis=axes, keepdims=True) > 1
        loose = np.any(possible & ~exact, axis=axes, keepdims=True)
    out = unsure | (many & loose)
    return out if keep else np.squeeze(out, axis=axes) if axes else out


def _extreme(name: str, render, sign: float, *, indices: bool = False):
    @op(name, render)
    def ref(ctx, args, attrs):
        (x,) = args
        axes, keep = _axes(x.shape, attrs.get("dims", attrs.get("dim"))), attrs.get("keepdim", False)
        if indices:
            v = x.value if x.dtype != "bool" else x.value.astype(np.int64)
            (a,) = axes or (0,)
            moved = np.moveaxis(v, a, -1) if v.ndim else v.reshape(1)
            if moved.ndim and moved.shape[-1] and is_float(x.dtype):
                nan = np.isnan(moved)
                pick = np.where(
                    np.any(nan, axis=-1),
                    np.argmax(nan, axis=-1),
                    np.argmax(moved, axis=-1) if sign > 0 else np.argmin(moved, axis=-1),
                )
            else:
                pick = np.argmax(moved, axis=-1) if sign > 0 else np.argmin(moved, axis=-1)
            value = np.asarray(pick) if v.ndim else np.asarray(pick).reshape(())
            if keep and v.ndim:
                value = np.expand_dims(value, a)
            err = None
            if ctx.track:
                amb = (
                    _winner_ambiguous(ctx, x, axes, keep, sign)
                    if is_float(x.dtype)
                    else np.any(~np.isfinite(x.err), axis=axes, keepdims=keep)
                )
                err = np.where(np.broadcast_to(amb, value.shape), np.inf, 0.0)
                if np.any(amb):
                    ctx.flag(f"{name}: a tie too close to call")
            return RV(value.astype(np.int64), "int64", err)
        f = np.max if sign > 0 else np.min
        with np.errstate(all="ignore"):
            value = np.asarray(f(x.value, axis=axes, keepdims=keep))
        err = None
        if ctx.track:
            err = (
                np.asarray(np.max(x.err, axis=axes, keepdims=keep, initial=0.0))
                if x.value.size
                else np.zeros(value.shape)
            )
            if is_float(x.dtype) and np.any(_winner_ambiguous(ctx, x, axes, keep, sign)):
                ctx.flag(f"{name}: a tie too close to call")
        return RV(value, x.dtype, err)


def _render_dims(method: str):
    return lambda a, at: f"{a[0]}.{method}({at['dims']!r}, keepdim={at['keepdim']})"


def _render_dim(method: str, suffix: str = ""):
    return lambda a, at: f"{a[0]}.{method}({at['dim']!r}, keepdim={at['keepdim']}){suffix}"


_extreme("amax", _render_dims("amax"), 1.0)
_extreme("amin", _render_dims("amin"), -1.0)
_extreme("max_dim", _render_dim("max", ".values"), 1.0)
_extreme("min_dim", _render_dim("min", ".values"), -1.0)
_extreme("argmax", _render_dim("argmax"), 1.0, indices=True)
_extreme("argmin", _render_dim("argmin"), -1.0, indices=True)
_extreme("max_all", lambda a, at: f"{a[0]}.max()", 1.0)
_extreme("min_all", lambda a, at: f"{a[0]}.min()", -1.0)


@op("prod", lambda a, at: f"{a[0]}.prod({_reduce_args(at)})")
def _prod(ctx, args, attrs):
    (x,) = args
    axes, keep = _axes(x.shape, attrs["dim"]), attrs["keepdim"]
    dt = _sum_dtype(x)
    if not is_float(dt):
        value = np.prod(x.value.astype(np.int64), axis=axes, keepdims=keep)
        err = np.sum(x.err, axis=axes, keepdims=keep) if ctx.track else None
        return RV(np.asarray(value), dt, err)
    value = _reduce_float(ctx, x, np.prod, axes, keep, dt)
    err = None
    if ctx.track:
        n = _count(x.shape, axes)
        with np.errstate(all="ignore"):
            mag = np.prod(np.abs(x.value), axis=axes, keepdims=keep)
            moved = np.prod(np.abs(x.value) + x.err, axis=axes, keepdims=keep)
            err = sanitize(np.where(moved == mag, 0.0, moved - mag) + (n + 1) * (UNIT[dt] * mag + ETA[dt]))
    return RV(np.asarray(value), dt, err)


@op(
    "var", lambda a, at: f"{a[0]}.var({at['dims']!r}, correction={at['correction']}, keepdim={at['keepdim']})"
)
def _var(ctx, args, attrs):
    (x,) = args
    axes, keep = _axes(x.shape, attrs["dims"]), attrs["keepdim"]
    n = _count(x.shape, axes)
    div = max(n - attrs["correction"], 0)
    with np.errstate(all="ignore"):
        mean = (
            np.mean(x.value, axis=axes, keepdims=True)
            if n
            else np.full(tuple(1 if i in axes else s for i, s in enumerate(x.shape)), np.nan)
        )
        d = x.value - mean
        ss = np.sum(d * d, axis=axes, keepdims=keep)
        value = round_to(ss / div, x.dtype)
    err = None
    if ctx.track:
        u = UNIT[x.dtype]
        with np.errstate(all="ignore"):
            emean = np.mean(x.err, axis=axes, keepdims=True) + (n + 1) * u * np.mean(
                np.abs(x.value), axis=axes, keepdims=True
            )
            ed = x.err + emean + u * np.abs(d)
            num = np.sum(2 * np.abs(d) * ed + ed * ed, axis=axes, keepdims=keep)
            num = num + (n + 2) * (u * ss + ETA[x.dtype])
            err = (
                sanitize(num / div + u * np.abs(value))
                if div
                else np.where((n <= 1) & np.isfinite(num), 0.0, np.inf) * np.ones(np.shape(value))
            )
        if div == 0 and n > 1:
            ctx.flag("var with no degrees of freedom")
    return RV(np.asarray(value), x.dtype, None if err is None else np.asarray(err))


@op("logsumexp", lambda a, at: f"torch.logsumexp({a[0]}, {at['dims']!r}, keepdim={at['keepdim']})")
def _logsumexp(ctx, args, attrs):
    (x,) = args
    dt = to_float_dtype(x.dtype)
    x = converted(x, dt, ctx)
    axes, keep = _axes(x.shape, attrs["dims"]), attrs["keepdim"]
    with np.errstate(all="ignore"):
        m = np.max(x.value, axis=axes, keepdims=True, initial=-np.inf)
        m = np.where(np.isinf(m), 0.0, m)
        total = np.log(np.sum(np.exp(x.value - m), axis=axes, keepdims=True)) + m
        value = round_to(total if keep else np.squeeze(total, axis=axes), dt)
    err = None
    if ctx.track:
        n = _count(x.shape, axes)
        e = np.max(x.err, axis=axes, keepdims=keep, initial=0.0)
        with np.errstate(all="ignore"):
            err = sanitize(e + (n + 8) * UNIT[dt] * (np.abs(np.where(np.isfinite(value), value, 0)) + 1))
    return RV(np.asarray(value), dt, None if err is None else np.asarray(err))


def _softmax_like(name: str, log: bool):
    @op(name, lambda a, at: f"{a[0]}.{name}({at['dim']})")
    def ref(ctx, args, attrs):
        (x,) = args
        d = attrs["dim"]
        if not x.shape:
            # exp(x - x) / 1 as PyTorch computes it: NaN for an infinite (or NaN) x
            value = np.asarray(0.0 if log else 1.0) if np.isfinite(x.value) else np.asarray(np.nan)
            return RV(value, x.dtype, np.zeros(()) if ctx.track else None)
        with np.errstate(all="ignore"):
            m = np.max(x.value, axis=d, keepdims=True, initial=-np.inf)
            s = x.value - m
            total = np.sum(np.exp(s), axis=d, keepdims=True)
            value = round_to(s - np.log(total) if log else np.exp(s) / total, x.dtype)
        err = None
        if ctx.track:
            n = x.shape[d]
            e = np.max(x.err, axis=d, keepdims=True, initial=0.0)
            u = UNIT[x.dtype]
            with np.errstate(all="ignore"):
                if log:
                    err = 2 * e + (n + 8) * u * (np.abs(value) + 1)
                else:
                    err = np.abs(value) * (2 * e + (n + 8) * u) + (n + 8) * ETA[x.dtype]
            err = sanitize(np.broadcast_to(err, value.shape).copy())
        return RV(value, x.dtype, err)


_softmax_like("softmax", False)
_softmax_like("log_softmax", True)


@op("cumsum", "{0}.cumsum({dim})")
def _cumsum(ctx, args, attrs):
    (x,) = args
    dt = _sum_dtype(x)
    d = attrs["dim"]
    if not x.shape:
        return converted(x, dt, ctx)
    if not is_float(dt):
        value = np.cumsum(x.value.astype(np.int64), axis=d)
        return RV(value, dt, np.cumsum(x.err, axis=d) if ctx.track else None)
    with np.errstate(all="ignore"):
        value = round_to(np.cumsum(x.value, axis=d), dt)
    err = None
    if ctx.track:
        n = x.shape[d]
        own = (n + 1) * (UNIT[dt] * np.cumsum(np.abs(x.value), axis=d) + ETA[dt])
        err = sanitize(np.cumsum(x.err, axis=d) + own)
    return RV(value, dt, err)


# -- movement ---------------------------------------------------------------------------------


def _movement(name: str, render, fn):
    @op(name, render)
    def ref(ctx, args, attrs):
        return same_layout(ctx, args[0], lambda v: fn(v, attrs))


_movement("reshape", "{0}.reshape({shape!r})", lambda v, at: v.reshape(at["shape"]))
_movement("permute", "{0}.permute({dims!r})", lambda v, at: np.transpose(v, at["dims"]))
_movement("transpose", "{0}.transpose({d0}, {d1})", lambda v, at: np.swapaxes(v, at["d0"], at["d1"]))
_movement("mT", "{0}.mT", lambda v, at: np.swapaxes(v, -1, -2))
_movement(
    "expand",
    "{0}.expand({shape!r})",
    lambda v, at: np.broadcast_to(
        v,
        tuple(n if n != -1 else v.shape[i - (len(at["shape"]) - v.ndim)] for i, n in enumerate(at["shape"])),
    ),
)
_movement("unsqueeze", "{0}.unsqueeze({dim})", lambda v, at: np.expand_dims(v, at["dim"]))
_movement(
    "squeeze",
    lambda a, at: f"{a[0]}.squeeze({'' if at['dim'] is None else at['dim']})",
    lambda v, at: _squeeze(v, at["dim"]),
)
_movement("flip", "{0}.flip({dims!r})", lambda v, at: np.flip(v, at["dims"]) if v.ndim else v)
_movement("select", "{0}.select({dim}, {index})", lambda v, at: np.take(v, at["index"], axis=at["dim"]))
_movement("clone", "{0}.clone()", lambda v, at: v.copy())


def _squeeze(v: np.ndarray, dim) -> np.ndarray:
    if dim is None:
        return v.reshape(tuple(n for n in v.shape if n != 1))
    if not v.ndim:
        return v
    d = dim % v.ndim
    return v.reshape(v.shape[:d] + v.shape[d + 1 :]) if v.shape[d] == 1 else v


def slice_text(attrs) -> str:
    start, stop, step = attrs["start"], attrs["stop"], attrs["step"]
    part = f"{'' if start is None else start}:{'' if stop is None else stop}"
    if step != 1:
        part += f":{step}"
    return ", ".join([":"] * attrs["dim"] + [part])


_movement(
    "slice",
    lambda a, at: f"{a[0]}[{slice_text(at)}]",
    lambda v, at: v[(slice(None),) * at["dim"] + (slice(at["start"], at["stop"], at["step"]),)],
)


@op("cat", lambda a, at: f"torch.cat({a[0]}, dim={at['dim']})")
def _cat(ctx, args, attrs):
    (parts,) = args
    dt = result_type(list(parts))
    parts = [converted(p, dt, ctx) for p in parts]
    keep = [p for p in parts if p.shape != (0,)] or parts[:1]  # legacy: 1-d empty tensors are skipped
    value = np.concatenate([p.value for p in keep], axis=attrs["dim"])
    err = (
        np.concatenate([np.broadcast_to(p.err, p.shape) for p in keep], axis=attrs["dim"])
        if ctx.track
        else None
    )
    return RV(value, dt, err)


def _index_text(args, attrs) -> str:
    """x[i], x[:, i], x[i, j], x[i, :, j] or x[mask]: index tensors at `dims` of the source."""
    src, idx = args[0], list(args[1:])
    dims = attrs["dims"]
    parts = [":"] * (max(dims) + 1)
    for d, name in zip(dims, idx):
        parts[d] = name
    return f"{src}[{', '.join(parts)}]"


@op("index", _index_text)
def _index(ctx, args, attrs):
    x, idx = args[0], args[1:]
    dims = attrs["dims"]
    key = [slice(None)] * (max(dims) + 1)
    for d, t in zip(dims, idx):
        key[d] = t.value
    value = np.asarray(x.value[tuple(key)])
    err = None
    if ctx.track:
        # An undecidable index makes what it picks undecidable: such indices read an extra
        # slot, appended to each indexed dim, whose bound is inf.
        pad = [
            (0, 1) if d in dims and idx[dims.index(d)].dtype != "bool" else (0, 0)
            for d in range(x.value.ndim)
        ]
        padded = np.pad(np.broadcast_to(x.err, x.shape), pad, constant_values=np.inf)
        for d, t in zip(dims, idx):
            if t.dtype != "bool":
                n = x.shape[d]
                key[d] = np.where(np.isfinite(np.broadcast_to(t.err, t.shape)), t.value % max(n, 1), n)
        err = np.asarray(padded[tuple(key)])
    return RV(value, x.dtype, err)


@op("stack", lambda a, at: f"torch.stack({a[0]}, dim={at['dim']})")
def _stack(ctx, args, attrs):
    (parts,) = args
    dt = result_type(list(parts))
    parts = [converted(p, dt, ctx) for p in parts]
    value = np.stack([p.value for p in parts], axis=attrs["dim"])
    err = np.stack([np.broadcast_to(p.err, p.shape) for p in parts], axis=attrs["dim"]) if ctx.track else None
    return RV(value, dt, err)


def _split_piece(v: np.ndarray, at: dict) -> np.ndarray:
    d, size, k = at["dim"], at["size"], at["piece"]
    start = k * size
    return np.take(v, np.arange(start, min(start + size, v.shape[d])), axis=d)


_movement("split", "{0}.split({size}, {dim})[{piece}]", _split_piece)


def _narrow(v: np.ndarray, at: dict) -> np.ndarray:
    d, start = at["dim"], at["start"]
    start = start + v.shape[d] if start < 0 else start
    return np.take(v, np.arange(start, start + at["length"]), axis=d)


_movement("narrow", "{0}.narrow({dim}, {start}, {length})", _narrow)


@op(
    "std", lambda a, at: f"{a[0]}.std({at['dims']!r}, correction={at['correction']}, keepdim={at['keepdim']})"
)
def _std(ctx, args, attrs):
    var = _var(ctx, args, attrs)
    return elementwise(ctx, np.sqrt, [var], var.dtype, var.dtype, k=1)


@op("norm", lambda a, at: f"{a[0]}.norm({at['p']}, {at['dims']!r}, keepdim={at['keepdim']})")
def _norm(ctx, args, attrs):
    (x,) = args
    sub = {"dims": attrs["dims"], "keepdim": attrs["keepdim"]}
    if attrs["p"] == 1:
        return _sum(ctx, [elementwise(ctx, np.abs, [x], x.dtype, x.dtype, k=0)], sub)
    squares = elementwise(ctx, np.square, [x], x.dtype, x.dtype, k=1)
    total = _sum(ctx, [squares], sub)
    return elementwise(ctx, np.sqrt, [total], x.dtype, x.dtype, k=1)


@op("masked_fill", "{0}.masked_fill({1}, {2})")
def _masked_fill(ctx, args, attrs):
    x, mask, value = args
    filled = converted(value, x.dtype, ctx)
    out = np.where(mask.value, filled.value, x.value)
    err = None
    if ctx.track:
        err = np.where(mask.value, np.broadcast_to(filled.err, out.shape), np.broadcast_to(x.err, out.shape))
        err = np.where(np.isfinite(np.broadcast_to(mask.err, out.shape)), err, np.inf)
    return RV(out, x.dtype, err)


# -- in-place ----------------------------------------------------------------------------------
# The result is computed in the promoted dtype and cast to the target's, as PyTorch does.

_INPLACE_BINARY = {"add_": _add, "sub_": np.subtract, "mul_": _mul, "div_": np.divide}


def _inplace_binary(name: str, f):
    @op(name, "{0}." + name + "({1})", inplace=True)
    def ref(ctx, args, attrs):
        target, other = args
        dt = result_type([target, other])
        dt = to_float_dtype(dt) if name == "div_" else dt
        return elementwise(ctx, f, [target, other], dt, target.dtype)


for _n, _f in _INPLACE_BINARY.items():
    _inplace_binary(_n, _f)


def _inplace_unary(name: str):
    f, _, k, floor, branch = _UNARY[name[:-1]]

    @op(name, "{0}." + name + "()", inplace=True)
    def ref(ctx, args, attrs):
        (target,) = args
        return elementwise(ctx, f, [target], target.dtype, target.dtype, k=k, floor=floor, branch=branch)


for _n in ("relu_", "exp_", "tanh_", "sigmoid_", "neg_", "abs_"):
    _inplace_unary(_n)


@op("clamp_", "{0}.clamp_({min}, {max})", inplace=True)
def _clamp_(ctx, args, attrs):
    (target,) = args
    return elementwise(
        ctx,
        _clamp_f,
        [target, attrs["min"], attrs["max"]],
        target.dtype,
        target.dtype,
        k=0,
        branch=lambda x, lo, hi: _order(x, lo) + 3 * _order(x, hi),
    )


def key_text(attrs, index_names: list) -> str:
    """The subscript of an index spec: a slice or an int on `dim`, or an index tensor on dim 0."""
    kind = attrs["kind"]
    if kind == "tensor":
        return index_names[0]
    if kind == "int":
        return ", ".join([":"] * attrs["dim"] + [str(attrs["index"])])
    return slice_text(attrs)


def _key(attrs, index_values: list) -> tuple:
    kind = attrs["kind"]
    if kind == "tensor":
        return (index_values[0],)
    lead = (slice(None),) * attrs["dim"]
    if kind == "int":
        return lead + (attrs["index"],)
    return lead + (slice(attrs["start"], attrs["stop"], attrs["step"]),)


def _written(ctx, target: RV, key: tuple, new: RV) -> RV:
    """target with target[key] = new (broadcast, cast to the target's dtype)."""
    new = converted(new, target.dtype, ctx)
    value = target.value.copy()
    value[key] = new.value
    err = None
    if ctx.track:
        err = np.array(np.broadcast_to(target.err, target.shape), dtype=np.float64)
        err[key] = new.err
    return RV(value, target.dtype, err)


@op("setitem", lambda a, at: f"{a[0]}[{key_text(at, a[2:])}] = {a[1]}", inplace=True, statement=True)
def _setitem(ctx, args, attrs):
    target, value = args[0], args[1]
    key = _key(attrs, [t.value for t in args[2:]])
    return _written(ctx, target, key, value)


@op("view_add_", lambda a, at: f"{a[0]}[{key_text(at, [])}].add_({a[1]})", inplace=True)
def _view_add_(ctx, args, attrs):
    """x[key].add_(y): writes through a view of x; the step's value is the view."""
    target, other = args
    key = _key(attrs, [])
    view = RV(
        np.asarray(target.value[key]),
        target.dtype,
        None if not ctx.track else np.asarray(np.broadcast_to(target.err, target.shape)[key]),
    )
    dt = result_type([view, other])
    added = elementwise(ctx, _add, [view, other], dt, target.dtype)
    new_target = _written(ctx, target, key, added)
    return added, new_target


# -- matrix products ---------------------------------------------------------------------------


def _product(name: str, template: str, f):
    @op(name, template)
    def ref(ctx, args, attrs):
        a, b = args
        dt = a.dtype
        if not is_float(dt):
            value = np.asarray(f(a.value.astype(np.int64), b.value.astype(np.int64)))
            value = round_to(value, dt)
            err = None
            if ctx.track:
                with np.errstate(all="ignore"):
                    err = sanitize(
                        np.asarray(
                            f(np.broadcast_to(a.err, a.shape), np.ones(b.shape))
                            + f(np.ones(a.shape), np.broadcast_to(b.err, b.shape))
                        )
                    )
            return RV(value, dt, err)
        with np.errstate(all="ignore"):
            value = round_to(np.asarray(f(a.value, b.value)), dt)
        err = None
        if ctx.track:
            k = a.shape[-1] if a.shape else 1
            ea, eb = np.broadcast_to(a.err, a.shape), np.broadcast_to(b.err, b.shape)
            with np.errstate(all="ignore"):
                mag = np.asarray(f(np.abs(a.value), np.abs(b.value)))
                moved = np.asarray(f(np.abs(a.value) + ea, np.abs(b.value) + eb))
                own = (k + 2) * (UNIT[dt] * mag + ETA[dt])
                err = sanitize(np.where(moved == mag, 0.0, moved - mag) + own)
        return RV(value, dt, err)


_product("mm", "torch.mm({0}, {1})", np.matmul)
_product("bmm", "torch.bmm({0}, {1})", np.matmul)
_product("matmul", "{0} @ {1}", np.matmul)
_product("dot", "torch.dot({0}, {1})", np.dot)
_product("mv", "torch.mv({0}, {1})", np.matmul)


__all__ = ["OPS", "Op", "FLOATS", "INTS", "discrete_err", "slice_text"]
