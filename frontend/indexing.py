"""x[index] and x[index] = value, with NumPy/PyTorch semantics.

Basic indexing (ints, slices with positive steps, None, ...) becomes view ops
(select, slice, unsqueeze): no copy, shared storage. Integer tensors, lists
and boolean masks are advanced indices: they become one `index` op (a
gather whose gradient scatter-adds, so repeated indices accumulate). Index
values are bounds-checked before anything is recorded (in a compiled step, by the
program: see IndexBounds).
"""

from __future__ import annotations

import numbers

import numpy as np
from llgrad.compiler import dtypes

from . import trace_state
from .dispatch import apply
from .tensor import Tensor


def _as_index_tensor(item) -> Tensor:
    if isinstance(item, Tensor):
        return item
    from .creation import tensor

    array = np.asarray(item)
    if array.dtype.kind not in "biu" and array.size:
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    if array.dtype.kind == "b":
        return tensor(array)
    return tensor(array.astype(np.int64))


def _normalize(index) -> tuple:
    if not isinstance(index, tuple):
        index = (index,)
    return index


def _consumed(item) -> int:
    if item is None or item is Ellipsis:
        return 0
    if isinstance(item, Tensor) and item.dtype is dtypes.bool_:
        return item.dim()
    if isinstance(item, np.ndarray) and item.dtype == np.bool_:
        return item.ndim
    return 1


class IndexBounds:
    """Where the indices into one dim must lie: [-size, size), or [0, size) when negative
    indices are errors (embedding). `checked(t)` is t once checked."""

    def __init__(self, size: int, dim: int = 0, negative: bool = True, message: str | None = None) -> None:
        self.size, self.dim, self.negative, self.message = size, dim, negative, message

    def error(self, lo: int, hi: int) -> IndexError | None:
        """The error for indices whose least is `lo` and greatest `hi`, if they are out of bounds."""
        low = -self.size if self.negative else 0
        bad = hi if hi >= self.size else lo if lo < low else None
        if bad is None:
            return None
        return IndexError(self.message or
                          f"index {bad} is out of bounds for dimension {self.dim} with size {self.size}")

    def checked(self, t: Tensor) -> Tensor:
        if t.numel() == 0:
            return t
        tracer = trace_state.active()
        values = _values_at_hand(t) if tracer is not None else t.detach()._realize()
        if values is not None:
            error = self.error(int(values.min()), int(values.max()))
            if error is not None:
                raise error
        if tracer is None:
            return t
        # In a compiled step the indices differ from call to call: the program computes their
        # extremes, which the replay checks before it stores anything, and reads in bounds.
        from . import functional as F
        from .autograd import grad_mode

        with grad_mode.no_grad():
            t = t.detach()
            tracer.index_checks.append((F.amin(t)._node, F.amax(t)._node, self))
            low = -self.size if self.negative else 0
            inside = F.logical_and(F.ge(t, low), F.lt(t, self.size))
            return F.where(inside, t, 0)


def _values_at_hand(t: Tensor):
    """t's values if they are computed (an argument of a compiled step, say), else None."""
    node = t._node
    if node.buffer is not None:
        return node.buffer.array
    base = t._storage.node.buffer
    return t._strided(base.array) if t._view and base is not None else None


def _basic(x: Tensor, index: tuple):
    """Apply the basic part of `index`; return (view, [(dim, index tensor)] of advanced parts)."""
    ndim = x.dim()
    used = sum(_consumed(i) for i in index)
    if sum(i is Ellipsis for i in index) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if used > ndim:
        raise IndexError(f"too many indices for tensor of dimension {ndim}")
    out, dim, advanced = x, 0, []
    for item in index:
        if item is None:
            out = apply("unsqueeze", out, dim=dim)
            dim += 1
        elif item is Ellipsis:
            dim += ndim - used
        elif isinstance(item, slice):
            step = 1 if item.step is None else _int(item.step)
            if step <= 0:
                raise ValueError("step must be greater than zero")
            start = 0 if item.start is None else _int(item.start)
            stop = out.shape[dim] if item.stop is None else _int(item.stop)
            if not (start == 0 and stop >= out.shape[dim] and step == 1):  # PyTorch skips full slices
                out = apply("slice", out, dim=dim, start=start, stop=stop, step=step)
            dim += 1
        elif isinstance(item, (numbers.Integral, np.integer)) and not isinstance(item, bool):
            out = apply("select", out, dim=dim, index=int(item))
        elif isinstance(item, bool):
            out = apply("unsqueeze", out, dim=dim)  # x[True]: a new dim of size 1
            dim += 1
        elif isinstance(item, Tensor) and not item.dim() and item.dtype in (dtypes.int64, dtypes.int32):
            out = apply("select", out, dim=dim, index=item.item())  # read as an int, like PyTorch: a view
        else:
            t = _as_index_tensor(item)
            if t.dtype is dtypes.bool_:
                mask = t.detach()._realize()
                size = tuple(out.shape)[dim:dim + mask.ndim]
                for k, (m, n) in enumerate(zip(mask.shape, size)):
                    if m != n:
                        raise IndexError(f"The shape of the mask {list(mask.shape)} at index {k} does not "
                                         f"match the shape of the indexed tensor {list(size)} at index {k}")
                from .creation import from_array

                for k, positions in enumerate(np.nonzero(mask)):
                    advanced.append((dim + k, from_array(positions.astype(np.int64))))
                dim += mask.ndim
            else:
                if t.dtype.is_floating_point:
                    raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
                advanced.append((dim, IndexBounds(out.shape[dim], dim).checked(t)))
                dim += 1
    return out, advanced


def _int(v) -> int:
    return v.__index__()


def _advanced_args(x: Tensor, advanced: list):
    """(tensor to index, its indexed start dim, index tensors): non-adjacent indexed dims
    are moved to the front first, as NumPy and PyTorch place their result dims there."""
    dims = [d for d, _ in advanced]
    idx = [t for _, t in advanced]
    if dims == list(range(dims[0], dims[0] + len(dims))):
        return x, dims[0], idx
    rest = [d for d in range(x.dim()) if d not in dims]
    return apply("permute", x, dims=tuple(dims + rest)), 0, idx


def getitem(x: Tensor, index) -> Tensor:
    view, advanced = _basic(x, _normalize(index))
    if not advanced:
        if view is x:  # PyTorch always returns a new view: x[:] slices, x[:, :] and x[...] alias
            if isinstance(index, slice):
                return apply("slice", x, dim=0, start=0, stop=x.shape[0], step=1)
            return apply("alias", x)
        return view
    src, start, idx = _advanced_args(view, advanced)
    return apply("index", src, *idx, start=start, count=len(idx))


def setitem(x: Tensor, index, value) -> None:
    from .functional import copy_into
    from .views import check_inplace, commit

    view, advanced = _basic(x, _normalize(index))
    if not advanced:
        copy_into(view, value)
        return
    check_inplace(view)
    src, start, idx = _advanced_args(view, advanced)
    if src is not view:
        raise NotImplementedError("assignment with non-adjacent advanced indices is not supported")
    if not isinstance(value, Tensor):
        from .dispatch import scalar_value

        value = apply("cast", scalar_value(value), dtype=x.dtype)
    elif value.dtype is not x.dtype:  # PyTorch's index_put casts numbers, never tensors
        names = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int", "bool": "Bool"}
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{names[x.dtype.name]} for the destination and {names[value.dtype.name]} "
                           "for the source.")
    new = apply("index_put", view, value, *idx, start=start, count=len(idx), accumulate=False)
    commit(view, new)
