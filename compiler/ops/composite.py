"""Composite ops: a PyTorch op with its own backward node, lowered by decomposing
into other ops of the table before scheduling (so it fuses like they do)."""

from __future__ import annotations

import math

from ..graph import OpDef
from . import register
from .reduce import _sum_infer
from .shapes import reduced_shape


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
