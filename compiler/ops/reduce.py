"""Reductions over some or all dims: sum, max, min, argmax, argmin (and `iota`).

attrs: `dims` is None for a whole-tensor reduction (PyTorch names that
overload differently, e.g. SumBackward0 vs SumBackward1) or the normalized
tuple of reduced dims; `keepdim` keeps them as size 1.
"""

from __future__ import annotations

from .. import dtypes
from ..graph import OpDef
from . import register
from .shapes import normalize_dim, normalize_dims, reduced_shape


def axes(node) -> tuple[int, ...]:
    """The reduced dims of a reduce node (all of them when dims is None)."""
    dims = node.attrs["dims"]
    return tuple(range(len(node.srcs[0].shape))) if dims is None else dims


def _normalize(srcs, attrs, name: str):
    (x,) = srcs
    dims = attrs.get("dims")
    if dims is not None:
        dims = normalize_dims(dims, len(x.shape)) or tuple(range(len(x.shape)))
        if not x.shape:  # dim 0 (or -1) of a 0-d tensor is valid and names no axis: reduce nothing
            dims = ()
    attrs["dims"] = dims
    attrs["keepdim"] = bool(attrs.get("keepdim", False))
    all_axes = tuple(range(len(x.shape))) if dims is None else dims
    return x, all_axes


def _sum_infer(srcs, attrs):
    x, ax = _normalize(srcs, attrs, "sum")
    dt = x.dtype if x.dtype.is_floating_point else dtypes.int64
    return reduced_shape(x.shape, ax, attrs["keepdim"]), dt


def _extreme_infer(name: str):
    def infer(srcs, attrs):
        x, ax = _normalize(srcs, attrs, name)
        if x.numel == 0:
            if attrs["dims"] is None:
                raise RuntimeError(
                    f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
                    "Specify the reduction dim with the 'dim' argument."
                )
            for d in ax:
                if x.shape[d] == 0:
                    raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
        out_dtype = dtypes.int64 if name.startswith("arg") else x.dtype
        return reduced_shape(x.shape, ax, attrs["keepdim"]), out_dtype

    return infer


def _ctx_axes(c) -> tuple[int, ...]:
    dims = c.attrs["dims"]
    return tuple(range(len(c.src_shapes[0]))) if dims is None else dims


def _keepdim_grad(e, g, c):
    """The output gradient with reduced dims restored as size 1."""
    if c.attrs["keepdim"]:
        return g
    src_shape = c.src_shapes[0]
    kept = tuple(1 if i in _ctx_axes(c) else n for i, n in enumerate(src_shape))
    return e.reshape(g, shape=kept)


def _vjp_sum(e, g, c):
    return (e.expand(_keepdim_grad(e, g, c), shape=c.src_shapes[0]),)


def _even_split(e, g, c):
    """Gradient of the whole-tensor max()/min(): ties share it evenly, NaNs share it when it is NaN."""
    x = c.srcs[0]
    out = _keepdim_grad(e, c.out, c)
    mask = e.logical_or(e.eq(x, out), e.logical_and(e.ne(x, x), e.ne(out, out)))
    count = e.sum(mask, dims=c.attrs["dims"], keepdim=True)
    return (e.where(mask, e.div(_keepdim_grad(e, g, c), count), 0),)


def _vjp_amax(e, g, c):
    """PyTorch's amax/amin rule: grad / count(x == out) where x == out. Ties share it; a NaN
    slice matches nothing and gets NaN everywhere (0 * (g / 0))."""
    x = c.srcs[0]
    mask = e.eq(x, _keepdim_grad(e, c.out, c))
    count = e.sum(mask, dims=c.attrs["dims"], keepdim=True)
    return (e.mul(e.div(_keepdim_grad(e, g, c), count), mask),)


def _extreme_vjp(arg_op: str):
    def vjp(e, g, c):
        x = c.srcs[0]
        if c.attrs["dims"] is None:
            return _even_split(e, g, c)
        if not c.src_shapes[0]:  # max(0) of a 0-d tensor is the tensor
            return (g,)
        g = _keepdim_grad(e, g, c)
        # Along a dim: the whole gradient goes to the one index max/min returns.
        (d,) = _ctx_axes(c)
        index = getattr(e, arg_op)(x, dims=(d,), keepdim=True)
        hit = e.eq(e.iota(shape=c.src_shapes[0], dim=d), index)
        return (e.where(hit, g, 0),)

    return vjp


def _max_name(name):
    return lambda attrs: f"{name}Backward1" if attrs["dims"] is None else f"{name}Backward0"


register(OpDef("sum", "reduce", _sum_infer, reduce="sum", vjp=_vjp_sum,
               grad_fn=lambda a: "SumBackward0" if a["dims"] is None else "SumBackward1"))
def _extreme_saves(attrs) -> dict:
    # Along a dim PyTorch saves only the indices: llgrad recomputes them from a snapshot of the
    # input (not version-checked); the whole-tensor max()/min() saves input and result.
    return {0: (0, "out")} if attrs["dims"] is None else {0: (("value", 0),)}


register(OpDef("max", "reduce", _extreme_infer("max"), reduce="max", vjp=_extreme_vjp("argmax"),
               saves=_extreme_saves, grad_fn=_max_name("Max")))
register(OpDef("min", "reduce", _extreme_infer("min"), reduce="min", vjp=_extreme_vjp("argmin"),
               saves=_extreme_saves, grad_fn=_max_name("Min")))
register(OpDef("amax", "reduce", _extreme_infer("amax"), reduce="max", vjp=_vjp_amax,
               saves={0: (0, "out")}, grad_fn="AmaxBackward0"))
register(OpDef("amin", "reduce", _extreme_infer("amin"), reduce="min", vjp=_vjp_amax,
               saves={0: (0, "out")}, grad_fn="AminBackward0"))
register(OpDef("argmax", "reduce", _extreme_infer("argmax"), reduce="argmax"))
register(OpDef("argmin", "reduce", _extreme_infer("argmin"), reduce="argmin"))


def _iota_infer(srcs, attrs):
    attrs["shape"] = tuple(attrs["shape"])
    return attrs["shape"], dtypes.int64


# iota(shape, dim): each element's index along `dim` (used to build one-hot masks).
register(OpDef("iota", "iota", _iota_infer))


def _vjp_prod(e, g, c):
    # prod / x fails where x == 0: with one zero in a slice its gradient is the product of
    # the others; with two or more, zero (PyTorch's rule).
    x = c.srcs[0]
    dims = c.attrs["dims"]
    g = _keepdim_grad(e, g, c)
    out = _keepdim_grad(e, c.out, c)
    zero = e.eq(x, 0)
    zeros = e.sum(zero, dims=dims, keepdim=True)
    others = e.prod(e.where(zero, 1, x), dims=dims, keepdim=True)
    grad = e.where(zero, e.where(e.eq(zeros, 1), others, 0), e.div(out, x))
    return (e.mul(g, grad),)


register(OpDef("prod", "reduce", _sum_infer, reduce="prod", vjp=_vjp_prod, saves={0: (0, "out")},
               grad_fn=lambda a: "ProdBackward0" if a["dims"] is None else "ProdBackward1"))


def _cumsum_infer(srcs, attrs):
    (x,) = srcs
    attrs["dim"] = normalize_dim(attrs["dim"], len(x.shape))
    return x.shape, x.dtype if x.dtype.is_floating_point else dtypes.int64


def _vjp_cumsum(e, g, c):
    d = c.attrs["dim"]
    if not c.src_shapes[0]:
        return (g,)
    return (e.flip(e.cumsum(e.flip(g, dims=(d,)), dim=d), dims=(d,)),)


# A scan: a running sum along `dim`, written at every position.
register(OpDef("cumsum", "scan", _cumsum_infer, reduce="sum", vjp=_vjp_cumsum, grad_fn="CumsumBackward0"))
