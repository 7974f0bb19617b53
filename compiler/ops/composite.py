"""Composite ops: a PyTorch op with its own backward node, lowered by decomposing
into other ops of the table before scheduling (so it fuses like they do)."""

from __future__ import annotations

import math

from ..dtypes import DEFAULT_FLOAT
from ..graph import OpDef
from . import register
from .reduce import _sum_infer
from .shapes import normalize_dim, reduced_shape


def _reduced_count(x, attrs) -> int:
    dims = attrs["dims"]
    axes = range(len(x.shape)) if dims is None else dims
    return math.prod(x.shape[d] for d in axes)


def _mean_infer(srcs, attrs):
    (x,) = srcs
    if not x.dtype.is_floating_point:
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating "
            f"point or complex dtype. Got: {_NAMES[x.dtype.name]}"
        )
    return _sum_infer(srcs, attrs)


_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int", "bool": "Bool"}


def _decompose_mean(e, srcs, attrs):
    (x,) = srcs
    total = e.sum(x, dims=attrs["dims"], keepdim=attrs["keepdim"])
    return e.div(total, _reduced_count(x, attrs))


def _vjp_mean(e, g, c):
    x_shape = c.src_shapes[0]
    dims = c.attrs["dims"]
    axes = tuple(range(len(x_shape))) if dims is None else dims
    if not c.attrs["keepdim"]:
        g = e.reshape(g, shape=reduced_shape(x_shape, axes, True))
    count = math.prod(x_shape[d] for d in axes)
    return (e.div(e.expand(g, shape=x_shape), count),)


register(OpDef("mean", "composite", _mean_infer, decompose=_decompose_mean, vjp=_vjp_mean,
               grad_fn=lambda a: "MeanBackward0" if a["dims"] is None else "MeanBackward1"))


def _norm_infer(srcs, attrs):
    (x,) = srcs
    if not x.dtype.is_floating_point:
        raise RuntimeError(
            "linalg.vector_norm: Expected a floating point or complex tensor as input. "
            f"Got {_NAMES[x.dtype.name]}"
        )
    attrs["p"] = float(attrs.get("p", 2.0))
    return _sum_infer(srcs, attrs)


def _decompose_norm(e, srcs, attrs):
    (x,) = srcs
    p, dims, keep = attrs["p"], attrs["dims"], attrs["keepdim"]
    if p == 2.0:
        return e.sqrt(e.sum(e.mul(x, x), dims=dims, keepdim=keep))
    if p == 1.0:
        return e.sum(e.abs(x), dims=dims, keepdim=keep)
    if p == math.inf:
        return e.max(e.abs(x), dims=dims, keepdim=keep)
    if p == -math.inf:
        return e.min(e.abs(x), dims=dims, keepdim=keep)
    if p == 0.0:
        return e.cast(e.sum(e.ne(x, 0), dims=dims, keepdim=keep), dtype=x.dtype)
    total = e.sum(e.pow_scalar(e.abs(x), exponent=p), dims=dims, keepdim=keep)
    return e.pow_scalar(total, exponent=1.0 / p)


def _vjp_norm(e, g, c):
    x = c.srcs[0]
    p, dims = c.attrs["p"], c.attrs["dims"]
    axes = tuple(range(len(c.src_shapes[0]))) if dims is None else dims
    norm = c.out
    if not c.attrs["keepdim"]:
        kept = reduced_shape(c.src_shapes[0], axes, True)
        g, norm = e.reshape(g, shape=kept), e.reshape(norm, shape=kept)
    if p == 0.0:
        return (e.mul(x, 0),)
    if p == 1.0:
        return (e.mul(e.sign(x), g),)
    if p in (math.inf, -math.inf):
        # Ties share the gradient evenly, as for max().
        hit = e.eq(e.abs(x), norm)
        count = e.sum(hit, dims=dims, keepdim=True)
        return (e.where(hit, e.div(e.mul(e.sign(x), g), count), 0),)
    if p == 2.0:
        scaled = e.mul(x, e.div(g, norm))
    else:
        # x * |x|^(p-2) * g / norm^(p-1)
        scaled = e.mul(e.mul(x, e.pow_scalar(e.abs(x), exponent=p - 2)),
                       e.div(g, e.pow_scalar(norm, exponent=p - 1)))
    # A zero norm has a zero subgradient (PyTorch masks it the same way).
    return (e.where(e.eq(norm, 0), 0, scaled),)


register(OpDef("norm", "composite", _norm_infer, decompose=_decompose_norm, vjp=_vjp_norm,
               saves={0: (0, "out")}, grad_fn="LinalgVectorNormBackward0"))


def _float_only(name: str, x) -> None:
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"\"{name}\" not implemented for '{_NAMES[x.dtype.name]}'")


def _softmax_infer(srcs, attrs):
    (x,) = srcs
    _float_only("softmax", x)
    attrs["dim"] = normalize_dim(attrs["dim"], len(x.shape)) if x.shape else 0
    return x.shape, x.dtype


def _shifted(e, x, d):
    """x - max over dim d (keepdim): the numerically safe argument of exp."""
    return e.sub(x, e.max(x, dims=(d,), keepdim=True))


def _decompose_softmax(e, srcs, attrs):
    (x,) = srcs
    if not x.shape or not x.numel:  # (an empty tensor has no max to shift by)
        return e.div(e.exp(e.sub(x, x)), 1)
    ex = e.exp(_shifted(e, x, attrs["dim"]))
    return e.div(ex, e.sum(ex, dims=(attrs["dim"],), keepdim=True))


def _vjp_softmax(e, g, c):
    y = c.out
    if not c.src_shapes[0]:
        return (e.mul(g, 0),)
    return (e.mul(y, e.sub(g, e.sum(e.mul(g, y), dims=(c.attrs["dim"],), keepdim=True))),)


def _decompose_log_softmax(e, srcs, attrs):
    (x,) = srcs
    if not x.shape or not x.numel:
        return e.sub(x, x)
    s = _shifted(e, x, attrs["dim"])
    return e.sub(s, e.log(e.sum(e.exp(s), dims=(attrs["dim"],), keepdim=True)))


def _vjp_log_softmax(e, g, c):
    if not c.src_shapes[0]:
        return (e.mul(g, 0),)
    total = e.sum(g, dims=(c.attrs["dim"],), keepdim=True)
    return (e.sub(g, e.mul(e.exp(c.out), total)),)


register(OpDef("softmax", "composite", _softmax_infer, decompose=_decompose_softmax, vjp=_vjp_softmax,
               saves={0: ("out",)}, grad_fn="SoftmaxBackward0"))
register(OpDef("log_softmax", "composite", _softmax_infer, decompose=_decompose_log_softmax,
               vjp=_vjp_log_softmax, saves={0: ("out",)}, grad_fn="LogSoftmaxBackward0"))


def _logsumexp_infer(srcs, attrs):
    (x,) = srcs
    if attrs.get("dims") is None:
        attrs["dims"] = tuple(range(len(x.shape)))
    shape, dtype = _sum_infer(srcs, attrs)
    return shape, dtype if x.dtype.is_floating_point else DEFAULT_FLOAT  # integers: as PyTorch, in float


def _decompose_logsumexp(e, srcs, attrs):
    (x,) = srcs
    if not x.dtype.is_floating_point:
        x = e.cast(x, dtype=DEFAULT_FLOAT)
    dims = attrs["dims"] or None
    if not x.numel:  # empty slices: log(0) = -inf, and no max to shift by
        r = e.log(e.sum(e.exp(x), dims=dims, keepdim=True))
    else:
        m = e.amax(x, dims=dims, keepdim=True)
        m = e.where(e.eq(e.abs(m), float("inf")), 0, m)  # all -inf (or inf) slices: no shift
        r = e.add(e.log(e.sum(e.exp(e.sub(x, m)), dims=dims, keepdim=True)), m)
    return r if attrs["keepdim"] else e.reshape(r, shape=reduced_shape(x.shape, _axes(x, attrs), False))


def _axes(x, attrs):
    dims = attrs["dims"]
    return tuple(range(len(x.shape))) if not dims else dims


def _vjp_logsumexp(e, g, c):
    x = c.srcs[0]
    kept = reduced_shape(c.src_shapes[0], _axes(x, c.attrs), True)
    if not c.attrs["keepdim"]:
        g, out = e.reshape(g, shape=kept), e.reshape(c.out, shape=kept)
    else:
        out = c.out
    return (e.mul(g, e.exp(e.sub(x, out))),)


register(OpDef("logsumexp", "composite", _logsumexp_infer, decompose=_decompose_logsumexp,
               vjp=_vjp_logsumexp, saves={0: (0, "out")}, grad_fn="LogsumexpBackward0"))


def _var_infer(srcs, attrs):
    (x,) = srcs
    _float_only("var", x)
    attrs["correction"] = float(attrs.get("correction", 1))
    return _sum_infer(srcs, attrs)


def _centered(e, x, attrs):
    return e.sub(x, e.mean(x, dims=attrs["dims"], keepdim=True))


def _var_divisor(x, attrs) -> float:
    return max(_reduced_count(x, attrs) - attrs["correction"], 0.0)


def _grad_divisor(x, attrs) -> float:
    """N - correction unclamped: PyTorch's var/std backward divides by it as it is."""
    return float(_reduced_count(x, attrs) - attrs["correction"])


def _decompose_var(e, srcs, attrs):
    (x,) = srcs
    d = _centered(e, x, attrs)
    return e.div(e.sum(e.mul(d, d), dims=attrs["dims"], keepdim=attrs["keepdim"]), _var_divisor(x, attrs))


def _decompose_std(e, srcs, attrs):
    return e.sqrt(_decompose_var(e, srcs, attrs))


def _var_grad(e, g, c, scale):
    x = c.srcs[0]
    axes = tuple(range(len(c.src_shapes[0]))) if c.attrs["dims"] is None else c.attrs["dims"]
    if not c.attrs["keepdim"]:
        g = e.reshape(g, shape=reduced_shape(c.src_shapes[0], axes, True))
    centered = _centered(e, x, c.attrs)
    full = c.attrs["dims"] is None or not c.src_shapes[0]
    if full and _grad_divisor(x, c.attrs) <= 0:  # PyTorch: grad * inf, NaN where x is the mean
        return e.mul(g, e.where(e.eq(centered, 0), math.nan, math.inf))
    return e.mul(e.mul(g, scale), centered)


def _vjp_var(e, g, c):
    dof = _grad_divisor(c.srcs[0], c.attrs)
    return (_var_grad(e, g, c, 2.0 / dof if dof else math.inf),)


def _vjp_std(e, g, c):
    axes = tuple(range(len(c.src_shapes[0]))) if c.attrs["dims"] is None else c.attrs["dims"]
    std = c.out if c.attrs["keepdim"] else e.reshape(c.out, shape=reduced_shape(c.src_shapes[0], axes, True))
    if not c.attrs["keepdim"]:
        g = e.reshape(g, shape=std.shape)
    # PyTorch's std_backward: var's backward of grad / (2 std), masked to 0 where std is 0.
    grad_var = e.where(e.eq(std, 0), 0, e.div(g, e.mul(std, 2)))
    dof = _grad_divisor(c.srcs[0], c.attrs)
    return (_var_grad(e, grad_var, c, 2.0 / dof if dof else math.inf),)


register(OpDef("var", "composite", _var_infer, decompose=_decompose_var, vjp=_vjp_var, saves={0: (0,)},
               grad_fn="VarBackward0"))
register(OpDef("std", "composite", _var_infer, decompose=_decompose_std, vjp=_vjp_std,
               saves={0: (0, "out")}, grad_fn="StdBackward0"))


def _stack_infer(srcs, attrs):
    first = srcs[0]
    for i, s in enumerate(srcs):
        if s.shape != first.shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(first.shape)} "
                               f"at entry 0 and {list(s.shape)} at entry {i}")
    attrs["dim"] = normalize_dim(attrs["dim"], len(first.shape) + 1)
    d = attrs["dim"]
    from . import elementwise

    dtype = elementwise._promoted(srcs)
    return first.shape[:d] + (len(srcs),) + first.shape[d:], dtype


def _decompose_stack(e, srcs, attrs):
    d = attrs["dim"]
    return e.cat(*[e.unsqueeze(s, dim=d) for s in srcs], dim=d)


def _vjp_stack(e, g, c):
    d = c.attrs["dim"]
    return tuple(e.select(g, dim=d, index=i) if need else None for i, need in enumerate(c.needs))


register(OpDef("stack", "composite", _stack_infer, decompose=_decompose_stack, vjp=_vjp_stack,
               grad_fn="StackBackward0"))


def _bce_infer(srcs, attrs):
    x, t = srcs[0], srcs[1]
    _float_only("binary_cross_entropy", x)
    for other in srcs[1:]:
        if other.dtype is not x.dtype:
            raise RuntimeError(f"Found dtype {_NAMES[other.dtype.name]} but expected {_NAMES[x.dtype.name]}")
        if other.shape != x.shape:
            raise ValueError(f"Using a target size ({list(t.shape)}) that is different to the input size "
                             f"({list(x.shape)}) is deprecated. Please ensure they have the same size.")
    if attrs["reduction"] not in ("none", "mean", "sum"):
        raise ValueError(f"{attrs['reduction']} is not a valid value for reduction")
    return (x.shape if attrs["reduction"] == "none" else ()), x.dtype


def _clamped_log(e, x):
    return e.clamp(e.log(x), -100.0, has_min=True, has_max=False, variant="clamp_min")


def _decompose_bce(e, srcs, attrs):
    """-w (t log x + (1 - t) log(1 - x)), each log clamped at -100 as PyTorch does."""
    x, t = srcs[0], srcs[1]
    loss = e.neg(e.add(e.mul(t, _clamped_log(e, x)), e.mul(e.sub(1.0, t), _clamped_log(e, e.sub(1.0, x)))))
    if len(srcs) > 2:
        loss = e.mul(loss, srcs[2])
    if attrs["reduction"] == "none":
        return loss
    total = e.sum(loss, dims=None, keepdim=False)
    return e.div(total, math.prod(x.shape)) if attrs["reduction"] == "mean" else total


def _vjp_bce(e, g, c):
    """PyTorch's gradients: (x - t) / max((1 - x) x, 1e-12) for the input, finite at 0 and 1
    where the clamped logs' own derivative is not; (log(1 - x) - log(x)) for the target."""
    x, t = c.srcs[0], c.srcs[1]
    shape = c.src_shapes[0]
    if c.attrs["reduction"] != "none":
        g = e.expand(g, shape=shape)
    if c.attrs["reduction"] == "mean":
        g = e.div(g, math.prod(shape))
    if len(c.srcs) > 2:
        g = e.mul(g, c.srcs[2])
    one_minus_x = e.sub(1.0, x)
    spread = e.clamp(e.mul(one_minus_x, x), 1e-12, has_min=True, has_max=False, variant="clamp_min")
    grad_x = e.div(e.mul(g, e.sub(x, t)), spread)
    grad_t = e.mul(g, e.sub(e.log(one_minus_x), e.log(x)))
    return (grad_x, grad_t) + (None,) * (len(c.srcs) - 2)


register(OpDef("binary_cross_entropy", "composite", _bce_infer, decompose=_decompose_bce, vjp=_vjp_bce,
               saves={0: (0, 1, 2), 1: (0, 2)}, grad_fn="BinaryCrossEntropyBackward0", edges=(0, 1)))
