"""Views and movement: each rewrites the index its source is read at, never a copy.

`index(out_index, node)` maps an index of the node's output to the index its
source is read at. Ops that read pieces (`embed`, `cat`) return a list of
(source position, source index, window) instead: source k is read where its
window `(index, start, count, step)` holds; elsewhere `embed` is zero.
"""

from __future__ import annotations

import math

from ..graph import OpDef
from ..index import Sym, delinearize, linearize
from . import register
from .shapes import normalize_dim


def sum_to(e, g, shape: tuple):
    """Sum a broadcast gradient back to `shape` (the VJP of broadcasting)."""
    if tuple(g.shape) == tuple(shape):
        return g
    lead = len(g.shape) - len(shape)
    dims = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
    )
    if dims:
        g = e.sum(g, dims=dims, keepdim=True)
    if tuple(g.shape) != tuple(shape):
        g = e.reshape(g, shape=tuple(shape))
    return g


# -- reshape family ------------------------------------------------------------

def _reshape_infer(srcs, attrs):
    (x,) = srcs
    shape = tuple(attrs["shape"])
    if math.prod(shape) != x.numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {x.numel}")
    attrs["shape"] = shape
    return shape, x.dtype


def _reshape_index(idx, node):
    return delinearize(linearize(idx, node.shape), node.srcs[0].shape)


def _vjp_reshape(e, g, c):
    return (e.reshape(g, shape=c.src_shapes[0]),)


def _squeeze_infer(srcs, attrs):
    (x,) = srcs
    dims = attrs.get("dims")
    if dims is None:
        keep = [n for n in x.shape if n != 1]
    else:
        dims = {normalize_dim(d, len(x.shape)) for d in dims}
        keep = [n for i, n in enumerate(x.shape) if not (i in dims and n == 1)]
    attrs["shape"] = tuple(keep)
    return tuple(keep), x.dtype


def _unsqueeze_infer(srcs, attrs):
    (x,) = srcs
    dim = normalize_dim(attrs["dim"], len(x.shape) + 1)
    attrs["dim"] = dim
    shape = x.shape[:dim] + (1,) + x.shape[dim:]
    attrs["shape"] = shape
    return shape, x.dtype


def _squeeze_name(attrs):
    dims = attrs.get("dims")
    if dims is None:
        return "SqueezeBackward0"
    return "SqueezeBackward1" if len(dims) == 1 else "SqueezeBackward2"


def _reshape_name(attrs):
    # PyTorch's reshape views a contiguous tensor, aliases a non-contiguous one (frontend's call).
    return "ReshapeAliasBackward0" if attrs.get("alias") else "ViewBackward0"


for _name, _infer, _grad_fn in (
    ("reshape", _reshape_infer, _reshape_name),
    # A reshape whose result is a fresh tensor (PyTorch copies non-viewable reshapes first).
    ("unsafe_view", _reshape_infer, "UnsafeViewBackward0"),
    ("squeeze", _squeeze_infer, _squeeze_name),
    ("unsqueeze", _unsqueeze_infer, "UnsqueezeBackward0"),
):
    register(OpDef(_name, "movement", _infer, index=_reshape_index, vjp=_vjp_reshape, grad_fn=_grad_fn))


# -- permute family ---------------------------------------------------------------

def _permute_infer(srcs, attrs):
    (x,) = srcs
    ndim = len(x.shape)
    dims = tuple(normalize_dim(d, ndim) for d in attrs["dims"])
    if len(dims) != ndim:
        raise RuntimeError(
            "permute(sparse_coo): number of dimensions in the tensor input does not match "
            f"the length of the desired ordering of dimensions i.e. input.dim() = {ndim} "
            f"is not equal to len(dims) = {len(dims)}"
        )
    if sorted(dims) != list(range(ndim)):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    attrs["dims"] = dims
    return tuple(x.shape[d] for d in dims), x.dtype


def _permute_index(idx, node):
    src = [None] * len(idx)
    for k, d in enumerate(node.attrs["dims"]):
        src[d] = idx[k]
    return tuple(src)


def _vjp_permute(e, g, c):
    dims = c.attrs["dims"]
    inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))
    return (e.permute(g, dims=inverse),)


for _name, _grad_fn in (("permute", "PermuteBackward0"), ("transpose", "TransposeBackward0"),
                        ("t", "TBackward0")):
    register(OpDef(_name, "movement", _permute_infer, index=_permute_index, vjp=_vjp_permute,
                   grad_fn=_grad_fn))


# -- expand ---------------------------------------------------------------------

def _expand_infer(srcs, attrs):
    (x,) = srcs
    shape = list(attrs["shape"])
    lead = len(shape) - len(x.shape)
    if lead < 0:
        raise RuntimeError(
            f"expand(torch.FloatTensor{{{list(x.shape)}}}, size={shape}): the number of sizes "
            "provided must be greater or equal to the number of dimensions in the tensor"
        )
    for i, n in enumerate(shape):
        own = x.shape[i - lead] if i >= lead else None
        if n == -1:
            if own is None:
                raise RuntimeError(
                    f"The expanded size of the tensor (-1) isn't allowed in a leading, "
                    f"non-existing dimension {i}"
                )
            shape[i] = own
        elif own is not None and own != 1 and own != n:
            raise RuntimeError(
                f"The expanded size of the tensor ({n}) must match the existing size ({own}) at "
                f"non-singleton dimension {i}.  Target sizes: {shape}.  Tensor sizes: {list(x.shape)}"
            )
    attrs["shape"] = tuple(shape)
    return tuple(shape), x.dtype


def _expand_index(idx, node):
    src_shape = node.srcs[0].shape
    lead = len(idx) - len(src_shape)
    return tuple(
        Sym.of(0) if n == 1 else idx[lead + j] for j, n in enumerate(src_shape)
    )


def _vjp_expand(e, g, c):
    return (sum_to(e, g, c.src_shapes[0]),)


register(OpDef("expand", "movement", _expand_infer, index=_expand_index, vjp=_vjp_expand,
               grad_fn="ExpandBackward0"))


# -- slicing ----------------------------------------------------------------------

def _slice_infer(srcs, attrs):
    (x,) = srcs
    dim = normalize_dim(attrs["dim"], len(x.shape))
    start, stop, step = attrs["start"], attrs["stop"], attrs["step"]
    if step <= 0:
        raise ValueError("step must be greater than zero")
    n = x.shape[dim]
    start, stop, _ = slice(start, stop, 1).indices(n)
    stop = max(stop, start)
    attrs.update(dim=dim, start=start, stop=stop)
    length = (stop - start + step - 1) // step
    return x.shape[:dim] + (length,) + x.shape[dim + 1:], x.dtype


def _slice_index(idx, node):
    a = node.attrs
    d = a["dim"]
    return idx[:d] + (idx[d] * a["step"] + a["start"],) + idx[d + 1:]


def _vjp_slice(e, g, c):
    a = c.attrs
    return (e.embed(g, dim=a["dim"], start=a["start"], step=a["step"], size=c.src_shapes[0][a["dim"]]),)


register(OpDef("slice", "movement", _slice_infer, index=_slice_index, vjp=_vjp_slice,
               grad_fn="SliceBackward0"))
# torch.split / chunk pieces: slices that PyTorch names after the split.
register(OpDef("split", "movement", _slice_infer, index=_slice_index, vjp=_vjp_slice,
               grad_fn="SplitBackward0"))


def _select_infer(srcs, attrs):
    (x,) = srcs
    if not x.shape:
        raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                         "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
    dim = normalize_dim(attrs["dim"], len(x.shape))
    n = x.shape[dim]
    i = attrs["index"]
    if not -n <= i < n:
        raise IndexError(f"index {i} is out of bounds for dimension {dim} with size {n}")
    attrs.update(dim=dim, index=i % n)
    return x.shape[:dim] + x.shape[dim + 1:], x.dtype


def _select_index(idx, node):
    d = node.attrs["dim"]
    return idx[:d] + (Sym.of(node.attrs["index"]),) + idx[d:]


def _vjp_select(e, g, c):
    a = c.attrs
    g = e.unsqueeze(g, dim=a["dim"])
    return (e.embed(g, dim=a["dim"], start=a["index"], step=1, size=c.src_shapes[0][a["dim"]]),)


register(OpDef("select", "movement", _select_infer, index=_select_index, vjp=_vjp_select,
               grad_fn="SelectBackward0"))
register(OpDef("unbind", "movement", _select_infer, index=_select_index, vjp=_vjp_select,
               grad_fn="UnbindBackward0"))


def _embed_infer(srcs, attrs):
    """The inverse of a slice: place the source into zeros along `dim`."""
    (x,) = srcs
    dim = attrs["dim"]
    shape = x.shape[:dim] + (attrs["size"],) + x.shape[dim + 1:]
    return shape, x.dtype


def _embed_index(idx, node):
    a = node.attrs
    d, start, step = a["dim"], a["start"], a["step"]
    shifted = idx[d] + (-start)
    src = idx[:d] + (shifted.floordiv(step) if step != 1 else shifted,) + idx[d + 1:]
    return [(0, src, (idx[d], start, node.srcs[0].shape[d], step))]


def _vjp_embed(e, g, c):
    a = c.attrs
    stop = a["start"] + a["step"] * c.src_shapes[0][a["dim"]]
    return (e.slice(g, dim=a["dim"], start=a["start"], stop=stop, step=a["step"]),)


register(OpDef("embed", "movement", _embed_infer, index=_embed_index, vjp=_vjp_embed,
               grad_fn="SliceBackwardBackward0"))


def _flip_infer(srcs, attrs):
    (x,) = srcs
    dims = tuple(sorted({normalize_dim(d, len(x.shape)) for d in attrs["dims"]}))
    attrs["dims"] = dims
    return x.shape, x.dtype


def _flip_index(idx, node):
    shape = node.shape
    return tuple(i * -1 + (shape[d] - 1) if d in node.attrs["dims"] else i for d, i in enumerate(idx))


def _vjp_flip(e, g, c):
    return (e.flip(g, dims=c.attrs["dims"]),)


# x[...] / x[:, :]: a new view of the whole tensor (PyTorch's alias).
register(OpDef("alias", "movement", lambda srcs, attrs: (srcs[0].shape, srcs[0].dtype),
               index=lambda idx, node: idx, vjp=lambda e, g, c: (g,), grad_fn="AliasBackward0"))
register(OpDef("flip", "movement", _flip_infer, index=_flip_index, vjp=_vjp_flip, grad_fn="FlipBackward0"))


def _cat_infer(srcs, attrs):
    ref = next((s for s in srcs if s.shape != (0,)), srcs[0])  # legacy: 1-D empties are skipped
    if not ref.shape:
        raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    d = normalize_dim(attrs["dim"], len(ref.shape))
    attrs["dim"] = d
    total = 0
    for i, s in enumerate(srcs):
        if s.shape == (0,) and ref.shape != (0,):
            continue
        mismatch = any(a != b for k, (a, b) in enumerate(zip(s.shape, ref.shape)) if k != d)
        if len(s.shape) != len(ref.shape) or mismatch:
            raise RuntimeError(
                f"Sizes of tensors must match except in dimension {d}. Expected size "
                f"{ref.shape[_first_diff(s.shape, ref.shape, d)]} but got size "
                f"{s.shape[_first_diff(s.shape, ref.shape, d)]} for tensor number {i} in the list."
                if len(s.shape) == len(ref.shape) else
                f"Tensors must have same number of dimensions: got {len(ref.shape)} and {len(s.shape)}"
            )
        total += s.shape[d]
    from .elementwise import _promoted

    return ref.shape[:d] + (total,) + ref.shape[d + 1:], _promoted(srcs)


def _first_diff(a, b, skip):
    return next(k for k, (x, y) in enumerate(zip(a, b)) if k != skip and x != y)


def _cat_pieces(node):
    d = node.attrs["dim"]
    offset = 0
    for k, s in enumerate(node.srcs):
        if s.shape == (0,) and node.shape != (0,):
            continue
        yield k, offset, s.shape[d]
        offset += s.shape[d]


def _cat_index(idx, node):
    d = node.attrs["dim"]
    return [(k, idx[:d] + (idx[d] + (-start),) + idx[d + 1:], (idx[d], start, count, 1))
            for k, start, count in _cat_pieces(node)]


def _vjp_cat(e, g, c):
    d = c.attrs["dim"]
    grads, offset = [], 0
    for shape, need in zip(c.src_shapes, c.needs):
        if shape == (0,) and len(c.src_shapes) > 1 and len(g.shape) != 1:  # skipped: an empty gradient
            grads.append(e.expand(e.cast(0, dtype=g.dtype), shape=(0,)) if need else None)
            continue
        n = shape[d]
        grads.append(e.slice(g, dim=d, start=offset, stop=offset + n, step=1) if need else None)
        offset += n
    return tuple(grads)


register(OpDef("cat", "movement", _cat_infer, index=_cat_index, vjp=_vjp_cat, grad_fn="CatBackward0"))
