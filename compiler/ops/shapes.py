"""Shape rules shared by the op table: broadcasting, dims, size formatting.

Errors are raised with PyTorch's exception types and wording, naming the
shapes involved, at the op the user wrote.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable

Shape = tuple[int, ...]


def size_str(shape: Shape) -> str:
    return f"torch.Size({list(shape)})"


def broadcast(*shapes: Shape) -> Shape:
    first = shapes[0]
    if len(shapes) == 2:  # the common cases, cheaply: equal shapes or a scalar operand
        second = shapes[1]
        if first == second or not second:
            return first
        if not first:
            return second
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for s in shapes:
        for i, n in enumerate(s, ndim - len(s)):
            if n == out[i] or n == 1:
                continue
            if out[i] == 1:
                out[i] = n
                continue
            a, b = _first_mismatch(shapes, i, ndim)
            raise RuntimeError(
                f"The size of tensor a ({a}) must match the size of tensor b ({b}) "
                f"at non-singleton dimension {i}"
            )
    return tuple(out)


def _first_mismatch(shapes, i, ndim):
    sizes = [s[i - (ndim - len(s))] for s in shapes if i - (ndim - len(s)) >= 0]
    big = [n for n in sizes if n != 1]
    return big[0], next(n for n in big if n != big[0])


def normalize_dim(dim: int, ndim: int) -> int:
    try:
        dim = operator.index(dim)
    except TypeError:
        raise TypeError(f"dim must be an int, got {type(dim).__name__}") from None
    lo, hi = (-ndim, ndim - 1) if ndim else (-1, 0)
    if not lo <= dim <= hi:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{lo}, {hi}], but got {dim})"
        )
    return dim % ndim if ndim else 0


def normalize_dims(dims: int | Iterable[int] | None, ndim: int) -> tuple[int, ...]:
    """Reduction dims as sorted, non-negative, unique ints; None means all."""
    if dims is None:
        return tuple(range(ndim))
    if isinstance(dims, int):
        dims = (dims,)
    out = []
    for d in dims:
        d = normalize_dim(d, ndim)
        if d in out:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
        out.append(d)
    return tuple(sorted(out))


def reduced_shape(shape: Shape, axes: tuple[int, ...], keepdim: bool) -> Shape:
    if keepdim:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def check_shape(shape) -> Shape:
    """A user-given size as a tuple of non-negative ints."""
    try:
        out = tuple(operator.index(n) for n in shape)
    except TypeError:
        raise TypeError(f"size must be a sequence of ints, got {shape!r}") from None
    for n in out:
        if n < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: {list(out)}")
    return out
