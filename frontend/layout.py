"""Strides of views, computed as PyTorch computes them.

llgrad never reads memory through strides (views are index arithmetic in the
IR), but PyTorch's strides decide user-visible behaviour: whether `view` is
allowed, whether `reshape` returns a view or a copy, `is_contiguous()`,
`stride()` and `storage_offset()`.
"""

from __future__ import annotations


def contiguous_strides(shape: tuple) -> tuple:
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(strides))


def is_contiguous(shape: tuple, strides: tuple) -> bool:
    expected = 1
    for n, s in zip(reversed(shape), reversed(strides)):
        if n == 0:
            return True
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def view_strides(old_shape: tuple, old_strides: tuple, new_shape: tuple) -> tuple | None:
    """Strides of `new_shape` viewing memory laid out as (old_shape, old_strides), or None
    when no view is possible (PyTorch's computeStride)."""
    numel = 1
    for n in old_shape:
        numel *= n
    if numel == 0:
        return contiguous_strides(new_shape) if tuple(old_shape) != tuple(new_shape) else tuple(old_strides)
    if not old_shape:
        return (1,) * len(new_shape)
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base_stride = old_strides[-1]
    tensor_numel = view_numel = 1
    for tensor_d in range(len(old_shape) - 1, -1, -1):
        tensor_numel *= old_shape[tensor_d]
        if tensor_d == 0 or (old_shape[tensor_d - 1] != 1
                             and old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base_stride
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if tensor_d > 0:
                chunk_base_stride = old_strides[tensor_d - 1]
                tensor_numel = view_numel = 1
    if view_d != -1:
        return None
    return tuple(new_strides)


def after_view(op: str, attrs: dict, in_shape: tuple, out_shape: tuple, strides: tuple, offset: int):
    """(strides, offset) of the result of view op `op` applied to (in_shape, strides, offset)."""
    if op == "alias":
        return strides, offset
    if op in ("reshape", "squeeze", "unsqueeze"):
        if op == "unsqueeze":
            d = attrs["dim"]
            new = strides[d] * in_shape[d] if d < len(in_shape) else 1
            return strides[:d] + (new,) + strides[d:], offset
        if op == "squeeze":
            dims = attrs.get("dims")
            chosen = set(range(len(in_shape))) if dims is None else _norm(dims, in_shape)
            kept = tuple(s for k, (s, n) in enumerate(zip(strides, in_shape)) if not (n == 1 and k in chosen))
            return kept, offset
        return view_strides(in_shape, strides, out_shape), offset
    if op in ("permute", "transpose", "t"):
        return tuple(strides[d] for d in attrs["dims"]), offset
    if op == "expand":
        lead = len(out_shape) - len(in_shape)
        own = (0,) * lead + tuple(0 if n == 1 and m != 1 else s
                                  for s, n, m in zip(strides, in_shape, out_shape[lead:]))
        return own, offset
    if op in ("slice", "split"):
        d = attrs["dim"]
        return (strides[:d] + (strides[d] * attrs["step"],) + strides[d + 1:],
                offset + attrs["start"] * (strides[d] if in_shape[d] else 0))
    if op in ("select", "unbind"):
        d = attrs["dim"]
        return strides[:d] + strides[d + 1:], offset + attrs["index"] * strides[d]
    raise AssertionError(f"{op} is not a view op")


def _norm(dims, shape):
    return {d % len(shape) for d in dims} if shape else set()
