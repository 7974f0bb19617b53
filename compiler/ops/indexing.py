"""Advanced indexing: gather-style reads (`index`) and scatters (`scatter_add`, `index_put`).

The indexed dims of the source are `start .. start+count-1`; the index
tensors (int64, broadcast together to `bshape`) replace them in the result:
    index(x, i1..ik)[pre, b, post] = x[pre, i1[b], .., ik[b], post]
Negative indices count from the end. Bounds are checked by the frontend
before the op is recorded (the kernel trusts them).
"""

from __future__ import annotations

from .. import dtypes
from ..graph import OpDef
from . import register
from .movement import sum_to
from .shapes import broadcast


def _check_indices(idx) -> tuple:
    for t in idx:
        if t.dtype not in (dtypes.int64, dtypes.int32):
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    return broadcast(*(t.shape for t in idx)) if idx else ()


def indexed_shape(shape: tuple, start: int, count: int, bshape: tuple) -> tuple:
    return shape[:start] + bshape + shape[start + count:]


def _index_infer(srcs, attrs):
    x, idx = srcs[0], srcs[1:]
    bshape = _check_indices(idx)
    return indexed_shape(x.shape, attrs["start"], attrs["count"], bshape), x.dtype


def _vjp_index(e, g, c):
    a = c.attrs
    idx = c.srcs[1:]
    out = e.scatter_add(g, *idx, shape=c.src_shapes[0], start=a["start"], count=a["count"])
    return (out,) + (None,) * len(idx)


register(OpDef("index", "gather", _index_infer, vjp=_vjp_index,
               saves={0: tuple(range(1, 9))}, grad_fn="IndexBackward0", edges=(0,)))


def _scatter_add_infer(srcs, attrs):
    g, idx = srcs[0], srcs[1:]
    attrs["shape"] = tuple(attrs["shape"])
    bshape = _check_indices(idx)
    want = indexed_shape(attrs["shape"], attrs["start"], attrs["count"], bshape)
    if g.shape != want:
        raise RuntimeError(f"scatter_add: updates of shape {list(g.shape)} do not match {list(want)}")
    return attrs["shape"], g.dtype


def _vjp_scatter_add(e, g, c):
    idx = c.srcs[1:]
    return (e.index(g, *idx, start=c.attrs["start"], count=c.attrs["count"]),) + (None,) * len(idx)


# The VJP of `index`: zeros of the source shape with the gradient added at each index (repeats add up).
register(OpDef("scatter_add", "scatter", _scatter_add_infer, vjp=_vjp_scatter_add,
               saves={0: tuple(range(1, 9))}, grad_fn="IndexPutBackward0", edges=(0,)))


def _index_put_infer(srcs, attrs):
    base, value, idx = srcs[0], srcs[1], srcs[2:]
    bshape = _check_indices(idx)
    target = indexed_shape(base.shape, attrs["start"], attrs["count"], bshape)
    try:
        broadcast(target, value.shape)
    except RuntimeError:
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(value.shape)} cannot be "
                           f"broadcast to indexing result of shape {list(target)}") from None
    attrs["accumulate"] = bool(attrs.get("accumulate", False))
    return base.shape, base.dtype


def _vjp_index_put(e, g, c):
    a = c.attrs
    base_shape, value_shape = c.src_shapes[0], c.src_shapes[1]
    idx = c.srcs[2:]
    gb = gv = None
    if c.needs[0]:
        gb = g if a["accumulate"] else e.index_put(g, 0, *idx, start=a["start"], count=a["count"])
    if c.needs[1]:
        gv = sum_to(e, e.index(g, *idx, start=a["start"], count=a["count"]), value_shape)
    del base_shape
    return (gb, gv) + (None,) * len(idx)


# x[i] = v: the base with `value` written (or added) at the indexed positions.
register(OpDef("index_put", "scatter", _index_put_infer, vjp=_vjp_index_put,
               saves={0: tuple(range(2, 10)), 1: tuple(range(2, 10))}, grad_fn="IndexPutBackward0",
               edges=(0, 1)))
