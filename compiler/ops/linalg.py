"""Matrix products. `mm` is a kernel of its own; `dot` and `mv` decompose into reductions."""

from __future__ import annotations

from ..graph import OpDef
from . import register

_TYPE_NAMES = {"float32": "float", "float64": "double", "int64": "long", "int32": "int", "bool": "bool"}
_CAP_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int", "bool": "Bool"}


def _mm_infer(srcs, attrs):
    a, b = srcs
    for name, x in (("self", a), ("mat2", b)):
        if len(x.shape) != 2:
            raise RuntimeError(f"{name} must be a matrix")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} and "
            f"{b.shape[0]}x{b.shape[1]})"
        )
    if a.dtype is not b.dtype:
        raise RuntimeError(
            "expected m1 and m2 to have the same dtype, but got: "
            f"{_TYPE_NAMES[a.dtype.name]} != {_TYPE_NAMES[b.dtype.name]}"
        )
    return (a.shape[0], b.shape[1]), a.dtype


def _vjp_mm(e, g, c):
    a, b = c.srcs
    ga = e.mm(g, e.permute(b, dims=(1, 0))) if c.needs[0] else None
    gb = e.mm(e.permute(a, dims=(1, 0)), g) if c.needs[1] else None
    return ga, gb


register(OpDef("mm", "matmul", _mm_infer, vjp=_vjp_mm, saves={0: (1,), 1: (0,)},
               grad_fn="MmBackward0"))


def _dot_infer(srcs, attrs):
    a, b = srcs
    if len(a.shape) != 1 or len(b.shape) != 1:
        raise RuntimeError(
            f"1D tensors expected, but got {len(a.shape)}D and {len(b.shape)}D tensors"
        )
    if a.dtype is not b.dtype:
        raise RuntimeError(
            "dot : expected both vectors to have same dtype, but found "
            f"{_CAP_NAMES[a.dtype.name]} and {_CAP_NAMES[b.dtype.name]}"
        )
    if a.shape != b.shape:
        raise RuntimeError(
            f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src [{b.shape[0]}] "
            f"to have the same number of elements, but got {a.shape[0]} and {b.shape[0]} "
            "elements respectively"
        )
    return (), a.dtype


def _decompose_dot(e, srcs, attrs):
    a, b = srcs
    return e.sum(e.mul(a, b), dims=None, keepdim=False)


def _vjp_dot(e, g, c):
    a, b = c.srcs
    return (e.mul(g, b) if c.needs[0] else None, e.mul(g, a) if c.needs[1] else None)


register(OpDef("dot", "composite", _dot_infer, decompose=_decompose_dot, vjp=_vjp_dot,
               saves={0: (1,), 1: (0,)}, grad_fn="DotBackward0"))


def _mv_infer(srcs, attrs):
    m, v = srcs
    if len(m.shape) != 2 or len(v.shape) != 1 or m.shape[1] != v.shape[0]:
        raise RuntimeError(
            f"size mismatch, got input ({m.shape[0] if m.shape else 0}), "
            f"mat ({'x'.join(map(str, m.shape))}), vec ({v.shape[0] if v.shape else 0})"
        )
    if m.dtype is not v.dtype:
        raise RuntimeError(
            "expected m1 and m2 to have the same dtype, but got: "
            f"{_TYPE_NAMES[m.dtype.name]} != {_TYPE_NAMES[v.dtype.name]}"
        )
    return (m.shape[0],), m.dtype


def _decompose_mv(e, srcs, attrs):
    m, v = srcs
    return e.sum(e.mul(m, v), dims=(1,), keepdim=False)


def _vjp_mv(e, g, c):
    m, v = c.srcs
    gm = e.mul(e.unsqueeze(g, dim=1), v) if c.needs[0] else None
    gv = e.mv(e.permute(m, dims=(1, 0)), g) if c.needs[1] else None
    return gm, gv


register(OpDef("mv", "composite", _mv_infer, decompose=_decompose_mv, vjp=_vjp_mv,
               saves={0: (1,), 1: (0,)}, grad_fn="MvBackward0"))


def _bmm_infer(srcs, attrs):
    a, b = srcs
    for name, x in (("batch1", a), ("batch2", b)):
        if len(x.shape) != 3:
            raise RuntimeError(f"{name} must be a 3D tensor")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise RuntimeError(
            "Expected size for first two dimensions of batch2 tensor to be: "
            f"[{a.shape[0]}, {a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}]."
        )
    if a.dtype is not b.dtype:
        raise RuntimeError(
            "expected scalar type "
            f"{_CAP_NAMES[a.dtype.name]} but found {_CAP_NAMES[b.dtype.name]}"
        )
    return (a.shape[0], a.shape[1], b.shape[2]), a.dtype


def _vjp_bmm(e, g, c):
    a, b = c.srcs
    ga = e.bmm(g, e.permute(b, dims=(0, 2, 1))) if c.needs[0] else None
    gb = e.bmm(e.permute(a, dims=(0, 2, 1)), g) if c.needs[1] else None
    return ga, gb


register(OpDef("bmm", "matmul", _bmm_infer, vjp=_vjp_bmm, saves={0: (1,), 1: (0,)}, grad_fn="BmmBackward0"))
